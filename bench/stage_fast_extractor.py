"""Fast extractor benchmark: pages/s on one core, main-text F1 and title match.

Data: the 130 readability test pages (scored with bench/quality.py). Baselines measured
in the same run on the same pages: BeautifulSoup ``get_text`` of the whole page (lxml
builder) and readability-lxml (``Document(html).summary()``), for speed and F1; for
titles, ``og:title`` else ``<title>``. Then (bench/extraction_sets.py) main text on the
Dragnet set (unseen: never tuned on) and the CleanEval set (tuned on) beside trafilatura
and readability-lxml, language identification, and the extraction-process hand-off.
"""

from __future__ import annotations

import gc
import os
import re
import resource
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from bench.extraction_sets import gold_rows, handoff_rows, language_rows
from bench.quality import ReadabilityCase, load_readability, text_f1, title_match, visible_text
from workers.extract import extract

__all__ = ["bench"]

SECTION = "fast extractor"


_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_MARKDOWN: dict[str, str] = {}


def _ours(case: ReadabilityCase) -> tuple[str, str | None]:
    out = extract(case.source, url=f"http://fakehost/test/{case.name}/", charset=case.charset)
    _MARKDOWN[case.name] = out.markdown
    return out.text, out.title


def _bs4_get_text(case: ReadabilityCase) -> tuple[str, str | None]:
    from bs4 import BeautifulSoup

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return BeautifulSoup(case.source, "lxml").get_text(" "), None


def _readability_lxml(case: ReadabilityCase) -> tuple[str, str | None]:
    from readability import Document

    doc = Document(case.source)
    return visible_text(doc.summary()), doc.short_title()


def _og_or_title(case: ReadabilityCase) -> str | None:
    tree = LexborHTMLParser(case.source)
    og = tree.css_first('meta[property="og:title"][content]')
    if og is not None and (og.attrs.get("content") or "").strip():
        return (og.attrs.get("content") or "").strip()
    title = tree.css_first("title")
    return title.text().strip() if title is not None else None


def _run(
    fn: Callable[[ReadabilityCase], tuple[str, str | None]], cases: list[ReadabilityCase], runs: int
) -> tuple[float, float, float, list[tuple[str, str | None]]]:
    """(median wall pages/s, median CPU s/page, best CPU s/page, outputs of the last run)."""
    wall, cpu = [], []
    outputs: list[tuple[str, str | None]] = []
    for _ in range(runs):
        gc.collect()
        w0, c0 = time.perf_counter(), time.process_time()
        outputs = [fn(case) for case in cases]
        wall.append(len(cases) / (time.perf_counter() - w0))
        cpu.append((time.process_time() - c0) / len(cases))
    return statistics.median(wall), statistics.median(cpu), min(cpu), outputs


def _f1(outputs: list[tuple[str, str | None]], cases: list[ReadabilityCase]) -> float:
    return statistics.mean(
        text_f1(text, c.expected_text) for (text, _), c in zip(outputs, cases, strict=True)
    )


def _titles(titles: list[str | None], cases: list[ReadabilityCase]) -> tuple[float, float]:
    matches = [title_match(t, c.expected_title) for t, c in zip(titles, cases, strict=True)]
    return (
        sum(strict for strict, _ in matches) / len(matches),
        sum(lenient for _, lenient in matches) / len(matches),
    )


def bench(*, quick: bool) -> list[dict[str, Any]]:
    cases = load_readability()
    if not cases:
        return [{"section": SECTION, "metric": "skipped", "note": "../shared/data not found"}]
    if quick:
        cases = cases[::10]
    rows = _readability_rows(cases, quick=quick)
    return rows + gold_rows(quick=quick) + language_rows(quick=quick) + handoff_rows(cases, quick=quick)


def _readability_rows(cases: list[ReadabilityCase], *, quick: bool) -> list[dict[str, Any]]:
    runs = 1 if quick else 7
    load_before = os.getloadavg()[0]
    ours_wall, ours_cpu, ours_best, ours_out = _run(_ours, cases, runs)
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    bs_wall, bs_cpu, _, bs_out = _run(_bs4_get_text, cases, 1 if quick else 3)
    rl_cases = cases[:5] if quick else cases
    rl_wall, rl_cpu, _, rl_out = _run(_readability_lxml, rl_cases, 1 if quick else 2)
    load = f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"

    f1 = _f1(ours_out, cases)
    md_f1 = statistics.mean(text_f1(_LINK_TARGET.sub("]", _MARKDOWN[c.name]), c.expected_text) for c in cases)
    strict, lenient = _titles([title for _, title in ours_out], cases)
    base_strict, base_lenient = _titles([_og_or_title(c) for c in cases], cases)
    rl_strict, rl_lenient = _titles([title for _, title in rl_out], rl_cases)
    n = f"{len(cases)} readability pages"
    return [
        {
            "section": SECTION,
            "metric": "pages/s (1 core, wall clock)",
            "value": ours_wall,
            "baseline": "BeautifulSoup get_text (lxml), whole page",
            "baseline_value": bs_wall,
            "target": ">= 200 pages/s",
            "met": ours_wall >= 200,
            "note": f"{n}, median of {runs} runs; machine shared, see CPU rows",
        },
        {
            "section": SECTION,
            "metric": "pages/s per CPU second (1 / CPU s per page)",
            "value": 1 / ours_cpu,
            "baseline": "readability-lxml",
            "baseline_value": 1 / rl_cpu,
            "target": ">= 200 pages/s",
            "met": 1 / ours_cpu >= 200,
            "note": (
                f"best run {1 / ours_best:.0f}; BeautifulSoup get_text {1 / bs_cpu:.0f} pages/CPU s; "
                f"readability-lxml wall {rl_wall:.1f}/s; {load}"
            ),
        },
        {
            "section": SECTION,
            "metric": "CPU s/page",
            "value": ours_cpu,
            "baseline": "readability-lxml",
            "baseline_value": rl_cpu,
            "ratio": rl_cpu / ours_cpu if ours_cpu else None,
            "note": f"peak RSS {rss_mb:.0f} MB after our runs (whole bench process)",
        },
        {
            "section": SECTION,
            "metric": "main-text token F1 (mean)",
            "value": f1,
            "baseline": "BeautifulSoup get_text, whole page",
            "baseline_value": _f1(bs_out, cases),
            "target": ">= 0.95",
            "met": f1 >= 0.95,
            "note": (
                f"readability-lxml: {_f1(rl_out, rl_cases):.3f}; our Markdown (link targets "
                f"removed): {md_f1:.3f}; F1 defined in bench/quality.py"
            ),
        },
        {
            "section": SECTION,
            "metric": "title match, strict",
            "value": strict,
            "baseline": "og:title else <title>",
            "baseline_value": base_strict,
            "target": ">= 0.90",
            "met": strict >= 0.90,
            "note": f"readability-lxml short_title: {rl_strict:.3f}",
        },
        {
            "section": SECTION,
            "metric": "title match, lenient (site-name part removed)",
            "value": lenient,
            "baseline": "og:title else <title>",
            "baseline_value": base_lenient,
            "target": ">= 0.90",
            "met": lenient >= 0.90,
            "note": f"readability-lxml short_title: {rl_lenient:.3f}; rule in bench/quality.py",
        },
    ]
