"""Fast-extractor rows beyond the readability set: main text on the Dragnet and CleanEval gold
sets beside trafilatura and readability-lxml, language identification, and the cost of the
hand-off to the extraction process. Used by bench/stage_fast_extractor.py.

Every tool gets the same input: the page decoded once with our charset rules (the set's
declared encoding as the transport hint), so no tool wins or loses on charset guessing.
trafilatura runs in both of its modes: default (``include_comments=True``) and main text
only (``include_comments=False``); the better of the two on each set is the baseline.
"""

from __future__ import annotations

import asyncio
import statistics
import time
import warnings
from collections import Counter
from collections.abc import Callable
from typing import Any

from bench.quality import TUNED_ON, UNSEEN, ReadabilityCase, load_gold_set, tokens, visible_text
from workers.extract import extract
from workers.extract.charset import decode_html

__all__ = ["gold_rows", "handoff_rows", "language_rows", "prf"]

SECTION = "fast extractor"
Tool = Callable[[ReadabilityCase], str]


def prf(ours: str, expected: str) -> tuple[float, float, float]:
    """(precision, recall, F1) of bench/quality.py's token F1 (the one definition)."""
    a, b = Counter(tokens(ours)), Counter(tokens(expected))
    if not a and not b:
        return 1.0, 1.0, 1.0
    overlap = sum((a & b).values())
    if not overlap:
        return 0.0, 0.0, 0.0
    p, r = overlap / sum(a.values()), overlap / sum(b.values())
    return p, r, 2 * p * r / (p + r)


def _decoded(case: ReadabilityCase) -> str:
    return decode_html(case.source, charset=case.charset).text


def _trafilatura(comments: bool) -> Tool:
    def run(case: ReadabilityCase) -> str:
        import trafilatura

        return trafilatura.extract(_decoded(case), include_comments=comments) or ""

    return run


def _readability_lxml(case: ReadabilityCase) -> str:
    from readability import Document

    return visible_text(Document(_decoded(case)).summary())


def _score(outputs: list[str], cases: list[ReadabilityCase]) -> tuple[float, float, float]:
    scores = [prf(o, c.expected_text) for o, c in zip(outputs, cases, strict=True)]
    return tuple(statistics.mean(s[i] for s in scores) for i in range(3))  # type: ignore[return-value]


def _run(tool: Tool, cases: list[ReadabilityCase]) -> tuple[list[str], float]:
    """(outputs, CPU s per page); a tool that raises on a page scores an empty text there."""
    outputs = []
    started = time.process_time()
    for case in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                outputs.append(tool(case))
            except Exception:  # noqa: BLE001 - a baseline's crash on one page is its empty answer
                outputs.append("")
    return outputs, (time.process_time() - started) / max(len(cases), 1)


def _fmt(prf_: tuple[float, float, float]) -> str:
    return f"{prf_[2]:.3f} (P {prf_[0]:.3f}, R {prf_[1]:.3f})"


def gold_rows(*, quick: bool) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for name in (UNSEEN, TUNED_ON):
        cases = load_gold_set(name)
        if not cases:
            rows.append({"section": SECTION, "metric": f"main-text F1, {name}", "note": "set not found"})
            continue
        if quick:
            cases = cases[::100]
        ours_out: list[str] = []
        markdown: list[str] = []
        started = time.process_time()
        for case in cases:
            out = extract(case.source, url="http://fakehost/page/", charset=case.charset)
            ours_out.append(out.text)
            markdown.append(out.markdown)
        ours_cpu = (time.process_time() - started) / len(cases)
        ours = _score(ours_out, cases)
        md = _score([_strip_link_targets(m) for m in markdown], cases)
        tf_main_out, tf_cpu = _run(_trafilatura(False), cases)
        tf_default_out, _ = _run(_trafilatura(True), cases)
        rl_out, rl_cpu = _run(_readability_lxml, cases)
        tf_main, tf_default, rl = (
            _score(tf_main_out, cases),
            _score(tf_default_out, cases),
            _score(rl_out, cases),
        )
        tf_best, mode = (
            (tf_main, "include_comments=False") if tf_main[2] >= tf_default[2] else (tf_default, "default")
        )
        role = "UNSEEN: never tuned on" if name == UNSEEN else "the set the extractor was tuned on"
        rows.append(
            {
                "section": SECTION,
                "metric": f"main-text F1, {name} ({len(cases)} pages, {role})",
                "value": ours[2],
                "baseline": f"trafilatura ({mode})",
                "baseline_value": tf_best[2],
                "target": ">= trafilatura" if name == UNSEEN else "",
                "met": ours[2] >= tf_best[2] if name == UNSEEN else None,
                "note": (
                    f"ours text {_fmt(ours)}, Markdown {_fmt(md)}; trafilatura main {_fmt(tf_main)}, "
                    f"default {_fmt(tf_default)}; readability-lxml {_fmt(rl)}; pages/CPU s: ours "
                    f"{1 / ours_cpu:.0f}, trafilatura {1 / tf_cpu:.0f}, readability-lxml {1 / rl_cpu:.0f}"
                ),
            }
        )
    return rows


def _strip_link_targets(markdown: str) -> str:
    import re

    return re.sub(r"\]\([^)]*\)", "]", markdown)


def _language_samples() -> list[tuple[str, str]]:
    """(expected language, main text) of readability pages that declare one, and demo articles."""
    from bench.quality import load_readability
    from workers.demoweb.graph import article_path
    from workers.demoweb.hosts import demo_host
    from workers.demoweb.pages import render_path
    from workers.demoweb.site import Origin, site_profile

    samples = []
    for case in load_readability():
        lang = case.metadata.get("lang")
        if isinstance(lang, str) and lang:
            samples.append((lang.split("-")[0].lower(), extract(case.source, url="http://fakehost/").text))
    for index in range(1, 121):
        host = demo_host(index)
        profile = site_profile(host)
        path = article_path(1, 1, 1)
        html = render_path(Origin(host, "", 10), path)
        samples.append((profile.lang, extract(html, url=f"http://{host}{path}").text))
    return samples


def language_rows(*, quick: bool) -> list[dict[str, Any]]:
    from workers.extract.language import detect_language

    samples = _language_samples()
    if quick:
        samples = samples[::20]

    def accuracy(detect: Callable[[str], str | None]) -> tuple[float, float]:
        started = time.process_time()
        hits = sum(detect(text) == lang for lang, text in samples)
        return hits / len(samples), (time.process_time() - started) / len(samples)

    ours, ours_cpu = accuracy(lambda t: detect_language(t).language)
    row: dict[str, Any] = {
        "section": SECTION,
        "metric": "language id: share correct (CLD2 via pycld2)",
        "value": ours,
        "note": (
            f"{len(samples)} pages of known language (readability pages that declare one, demo-web "
            f"articles in en/de/fr/es); {ours_cpu * 1000:.3f} ms/page"
        ),
    }
    try:
        import py3langid

        py3langid.classify("warm up: the model loads on the first call")
        base, base_cpu = accuracy(lambda t: str(py3langid.classify(t[:2000])[0]))
        row.update(baseline="py3langid", baseline_value=base)
        row["note"] += f"; py3langid {base_cpu * 1000:.3f} ms/page"
    except ImportError:
        pass
    return [row]


def handoff_rows(cases: list[ReadabilityCase], *, quick: bool) -> list[dict[str, Any]]:
    """Pages/s per CPU second through the daemon's extraction process (parent + child CPU)."""
    return [asyncio.run(_handoff(cases, quick=quick))]


async def _handoff(cases: list[ReadabilityCase], *, quick: bool) -> dict[str, Any]:
    import psutil

    from workers.fast_extractor.pool import ExtractionPool
    from workers.messages import RawPage, RoutedPage, compress_html, encode

    values = [
        encode(
            RoutedPage(
                page=RawPage(
                    url=f"http://fakehost/test/{c.name}/",
                    url_hash=f"{i:032x}",
                    host="fakehost",
                    final_url=f"http://fakehost/test/{c.name}/",
                    status=200,
                    content_type="text/html",
                    html_zstd=compress_html(c.source),
                    content_hash="",
                    fetched_at=time.time(),
                ),
                route="fast",
                score=100,
            )
        )
        for i, c in enumerate(cases)
    ]
    pool = ExtractionPool(processes=1, deadline_s=60.0)
    await pool.start()
    try:
        child = psutil.Process(pool.pids()[0])
        for value in values[:3]:
            await pool.extract(value)
        rounds = []
        for _ in range(1 if quick else 3):
            parent0, child0 = time.process_time(), sum(child.cpu_times()[:2])
            wall0 = time.perf_counter()

            async def lane(part: list[bytes]) -> None:
                for value in part:
                    await pool.extract(value)

            await asyncio.gather(lane(values[::2]), lane(values[1::2]))  # the daemon's 2 batches in flight
            wall = time.perf_counter() - wall0
            parent = (time.process_time() - parent0) / len(values)
            kid = (sum(child.cpu_times()[:2]) - child0) / len(values)
            rounds.append((parent, kid, len(values) / wall))
        parent, kid, wall_rate = min(rounds, key=lambda r: r[0] + r[1])
    finally:
        await pool.close()
    return {
        "section": SECTION,
        "metric": "pages/s per CPU second through the extraction process (hand-off included)",
        "value": 1 / (parent + kid),
        "target": ">= 200 pages/s",
        "met": 1 / (parent + kid) >= 200,
        "note": (
            f"daemon {parent * 1000:.2f} ms/page + extraction process {kid * 1000:.2f} ms/page "
            f"(decode, extract, encode); {wall_rate:.0f} pages/s wall with 1 process; "
            f"{len(values)} readability pages"
        ),
    }
