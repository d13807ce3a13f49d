"""End to end at scale: StreamCrawl beside Scrapy + trafilatura at 4k, 20k (and 100k) URLs.

The local web of real pages: the 130 readability articles served under 100 mirror host names
(``mNN.readability.demo.test``) by the demo web **in its own process** (it stands for the
internet and is not counted as ours); every fetch is a real HTTP request, robots.txt is read
and obeyed by both crawlers, both run with the same politeness (per-host concurrency 8, no
delay: it is our own loopback server). StreamCrawl runs as ``streamcrawl up`` runs it: the
daemons as separate processes (ingestor, router, two fast extractors, storage writer,
discovery), Tansu with its log in SeaweedFS, PostgreSQL; the CLI's publish-and-follow in this
process. The peer: ``bench/scrapy_peer.py`` (Scrapy, trafilatura per page, JSON Lines).

Runs alternate (ours, peer, ours, peer …) at each size; the table gives medians and the paired
ratio. CPU is per page for every process of ours (daemons, broker, PostgreSQL, S3, the CLI),
from /proc, and for the peer's process. Within each run of ours the same counters are read at
every tenth of the pages handled (``Windows``): how far fetching ran ahead of storing, the
CPU per handled page of the stages after the fetch early and late in the run, and the
daemons' resident memory at those moments, per size. Sizes come from ``STREAMCRAWL_BENCH_SIZES``
(default ``4000,20000``; ``make bench-scale`` adds 100000), alternating pairs per size from
``STREAMCRAWL_BENCH_PAIRS`` (default 2). During the largest run of ours,
py-spy samples each daemon: the top functions by own time say where the CPU goes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.helpers.ledger import crawl_batch
from tests.helpers.pipeline import Pipeline
from tests.helpers.services import production_group_timing, start_kafka, start_postgres, start_s3
from workers.demoweb import DemoWeb
from workers.demoweb.data import DataFiles, locate_data_dir
from workers.ledger import BatchProgress
from workers.settings import IngestorSettings, Settings, StackSettings

__all__ = ["bench"]

SECTION = "end to end at scale (2 cores)"
PROFILE_SECTION = "where the CPU goes (py-spy, largest run of ours)"
ROOT = Path(__file__).resolve().parents[1]
MIRRORS = 100
PER_HOST = 8
WORKERS = ("ingestor", "router", "fast_extractor", "fast_extractor#2", "storage_writer", "discovery")
BENCH_ENV = {
    "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": '{"*.demo.test": "127.0.0.1"}',
    "STREAMCRAWL_INGESTOR_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0",
    "STREAMCRAWL_INGESTOR_PER_HOST_CONCURRENCY": str(PER_HOST),
    # 100 host names on one loopback address stand for 100 sites: no per-IP cap (Scrapy's
    # CONCURRENT_REQUESTS_PER_IP is 0 too).
    "STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY": "0",
}


def sizes() -> list[int]:
    raw = os.environ.get("STREAMCRAWL_BENCH_SIZES", "4000,20000")
    return [int(s) for s in raw.split(",") if s.strip()]


def urls(port: int, count: int, offset: int) -> list[str]:
    names = sorted(DataFiles(locate_data_dir()).readability)
    out = []
    for i in range(offset, offset + count):
        mirror, page = divmod(i, len(names))
        out.append(
            f"http://m{mirror % MIRRORS}.readability.demo.test:{port}/{names[page]}/?copy={mirror // MIRRORS}"
        )
    return out


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    children: dict[int, list[int]] = collections.defaultdict(list)
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children[ppid].append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def _cpu(pids: list[int]) -> float:
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _status_mb(pid: int, field: str = "VmHWM") -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    return 0.0


class Groups:
    """CPU accounting per group of processes (each group: root PIDs whose trees are summed)."""

    def __init__(self, roots: dict[str, list[int]]) -> None:
        self.roots = roots

    def sample(self) -> dict[str, float]:
        out = {}
        for name, pids in self.roots.items():
            out[name] = _cpu([p for root in pids for p in _tree(root)])
        out["cli"] = time.process_time()
        return out


def _profile(pids: dict[str, int], seconds: int, base: Path) -> dict[str, list[tuple[str, float]]]:
    """Top functions by own samples per daemon, from ``py-spy record --format raw``."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    procs = {}
    for name, pid in pids.items():
        out = base / f"profile-{name}.txt"
        procs[name] = (
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "--pid",
                    str(pid),
                    "--duration",
                    str(seconds),
                    "--rate",
                    "50",
                    "--format",
                    "raw",
                    "--output",
                    str(out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            out,
        )
    summary: dict[str, list[tuple[str, float]]] = {}
    for name, (proc, out) in procs.items():
        try:
            proc.wait(timeout=seconds + 60)
        except subprocess.TimeoutExpired:
            proc.kill()
            continue
        own: collections.Counter[str] = collections.Counter()
        total = 0
        if not out.exists():
            continue
        for line in out.read_text(errors="replace").splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            frame = stack.split(";")[-1]
            frame = frame.split(" (")[0] + " (" + frame.rsplit("/", 1)[-1] if "(" in frame else frame
            own[frame] += int(count)
            total += int(count)
        summary[name] = [(f, n / total) for f, n in own.most_common(5)] if total else []
    return summary


class Windows:
    """The run's progress and every group's CPU counters, read each time a tenth more of its
    pages are handled, and each daemon's resident memory at those moments.

    What a run's average hides: at 100k URLs (a diagnostic run, 2 cores) the ingestor had
    fetched every URL by the time half were stored, so the backlog waited in Kafka and the
    first half of the run shared the cores between fetching and extraction. The CPU of a
    tenth is therefore not comparable between tenths for the fetching side; for the stages
    after the fetch it is per handled page in both."""

    def __init__(self, groups: Groups, daemons: dict[str, int], size: int) -> None:
        self.groups, self.daemons, self.size = groups, daemons, size
        self.marks: list[tuple[int, int, dict[str, float]]] = []  # (handled, fetched, CPU)
        self.rss: dict[str, float] = {}

    def tick(self, progress: BatchProgress) -> None:
        handled = progress.stored + progress.skipped
        due = min(10, handled * 10 // max(1, self.size)) - len(self.marks)  # tenths reached, not marked
        if due <= 0:
            return
        sample = self.groups.sample()
        self.marks += [(handled, progress.fetched, sample)] * due  # a poll may cross several tenths
        for name, pid in self.daemons.items():
            self.rss[name] = max(self.rss.get(name, 0.0), _status_mb(pid, "VmRSS"))

    def per_page(self, window: int) -> dict[str, float] | None:
        """CPU ms per handled page by group between the ``window``-th and the next tenth (0-based)."""
        if window + 1 >= len(self.marks):
            return None
        (n0, _, a), (n1, _, b) = self.marks[window], self.marks[window + 1]
        return {k: (b[k] - a[k]) / (n1 - n0) * 1000 for k in a} if n1 > n0 else None

    def fetched_at_half(self) -> float | None:
        """Share of the run's URLs fetched when half of them were handled."""
        return self.marks[4][1] / self.size if len(self.marks) > 4 and self.size else None


async def _ours(
    settings: Settings, groups: Groups, batch: str, targets: list[str], windows: Windows
) -> dict[str, Any]:
    before = groups.sample()
    started = time.monotonic()
    progress = await crawl_batch(settings, targets, batch, timeout_s=7200, on_tick=windows.tick)
    elapsed = time.monotonic() - started
    after = groups.sample()
    # Real pages that say noindex are fetched and extracted but not stored (skipped): they are
    # pages handled, as the peer (which ignores noindex) writes them out.
    handled = progress.stored + progress.skipped
    if not progress.complete or handled < len(targets) * 0.99:
        raise RuntimeError(f"bench crawl incomplete: {progress.summary()}")
    cpu = {k: after[k] - before[k] for k in after}
    return {
        "pps": handled / elapsed,
        "stored": handled,
        "cpu": cpu,
        "elapsed": elapsed,
        "early": windows.per_page(1),
        "late": windows.per_page(8),
        "fetched_at_half": windows.fetched_at_half(),
        "rss": windows.rss,
    }


def _peer(base: Path, targets: list[str], run: int) -> dict[str, Any]:
    url_file = base / f"peer-{run}.txt"
    url_file.write_text("\n".join(targets))
    out = base / f"peer-{run}.jsonl"
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.scrapy_peer",
            str(url_file),
            str(out),
            "--concurrency",
            "500",
            "--per-host",
            str(PER_HOST),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"scrapy peer failed: {proc.stderr[-2000:]}")
    items = json.loads(proc.stdout.strip().splitlines()[-1])["items"]
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"pps": items / elapsed, "stored": items, "cpu": cpu, "elapsed": elapsed}


async def bench(*, quick: bool) -> list[dict[str, Any]]:
    run_sizes = [300] if quick else sizes()
    pairs = 1 if quick else int(os.environ.get("STREAMCRAWL_BENCH_PAIRS", "2"))
    with contextlib.ExitStack() as services:
        base = Path(tempfile.mkdtemp(prefix="streamcrawl-bench-scale-"))
        services.callback(shutil.rmtree, base, ignore_errors=True)
        os.chmod(base, 0o711)
        s3_c, s3 = start_s3(base / "s3")
        services.callback(s3_c.stop)
        pg_c, pg = start_postgres(base / "pg")
        services.callback(pg_c.stop)
        kafka_c, kafka, _ = start_kafka(base / "kafka", s3=s3)
        kafka = production_group_timing(kafka)
        services.callback(kafka_c.stop)
        settings = Settings(
            stack=StackSettings(data_dir=base / "data"),
            kafka=kafka,
            postgres=pg,
            s3=s3,
            ingestor=IngestorSettings(allowed_networks=["127.0.0.1/32"]),
        )
        web = DemoWeb(port=0, processes=1)
        await web.start()
        pipeline = Pipeline(settings, log_dir=base / "logs", extra_env=BENCH_ENV)
        try:
            pipeline.start(*WORKERS)
            daemons = {name: p.pid for name, p in pipeline.procs.items()}
            groups = Groups(
                {
                    **{name: [pid] for name, pid in daemons.items()},
                    "broker": [p for p in [kafka_c.pid()] if p],
                    "postgresql": [p for p in [pg_c.pid()] if p],
                    "s3": [p for p in [s3_c.pid()] if p],
                }
            )
            await crawl_batch(settings, urls(web.port, 300, 90_000_000), "warmup", timeout_s=600)
            offset = 0
            results: dict[int, dict[str, list[dict[str, Any]]]] = {}
            profile: dict[str, list[tuple[str, float]]] = {}
            for size in run_sizes:
                results[size] = {"ours": [], "peer": []}
                for i in range(pairs):
                    targets = urls(web.port, size, offset)
                    offset += size
                    want_profile = not quick and size == max(run_sizes) and i == 0
                    windows = Windows(groups, daemons, size)
                    task = asyncio.create_task(_ours(settings, groups, f"scale-{size}-{i}", targets, windows))
                    if want_profile:
                        await asyncio.sleep(20)
                        profile = await asyncio.to_thread(_profile, daemons, 20, base)
                    results[size]["ours"].append(await task)
                    peer_targets = urls(web.port, size, offset)
                    offset += size
                    results[size]["peer"].append(await asyncio.to_thread(_peer, base, peer_targets, offset))
            rss = {name: _status_mb(pid) for name, pid in daemons.items()}
        finally:
            pipeline.stop()
            await web.stop()
    return _rows(results, rss, profile, quick=quick)


def _by_component(per_group: dict[str, float]) -> dict[str, float]:
    """The daemons' groups summed into one ``daemons`` figure beside the servers and the CLI."""
    out = {k: v for k, v in per_group.items() if k not in WORKERS}
    out["daemons"] = sum(v for k, v in per_group.items() if k in WORKERS)
    return out


def _run_rss(ours: list[dict[str, Any]]) -> dict[str, float]:
    """Per daemon, the largest resident set sampled during any of the runs of one size."""
    out: dict[str, float] = {}
    for run in ours:
        for name, mb in run["rss"].items():
            out[name] = max(out.get(name, 0.0), mb)
    return out


def _within_run_rows(
    size: int, ours: list[dict[str, Any]], rss_before: tuple[int, dict[str, float]] | None
) -> list[dict[str, Any]]:
    """How far fetching ran ahead of storing, with the CPU per handled page of the stages after
    the fetch early and late in the run; the daemons' resident memory at this size against
    the 20k run's (or the first size's)."""
    rows: list[dict[str, Any]] = []
    ahead = [r["fetched_at_half"] for r in ours if r.get("fetched_at_half") is not None]
    pairs = [(r["early"], r["late"]) for r in ours if r["early"] and r["late"]]
    if ahead and pairs:
        after_fetch = [k for k in pairs[0][0] if k not in ("ingestor", "router", "cli")]
        early = {k: statistics.median(e[k] for e, _ in pairs) for k in after_fetch}
        late = {k: statistics.median(x[k] for _, x in pairs) for k in after_fetch}
        rows.append(
            {
                "section": SECTION,
                "metric": f"URLs fetched when half of the {size:,} were stored (%)",
                "value": statistics.median(ahead) * 100,
                "note": "the backlog between fetch and extraction waits in Kafka; CPU ms per handled"
                " page after the fetch, 10-20% -> 80-90% of the run (the early tenth shares the"
                " cores with fetching): "
                + ", ".join(f"{k} {early[k]:.1f} -> {late[k]:.1f}" for k in after_fetch)
                + f"; total {sum(early.values()):.1f} -> {sum(late.values()):.1f}",
            }
        )
    rss = _run_rss(ours)
    if rss:
        total = sum(rss.values())
        before = sum(rss_before[1].values()) if rss_before else None
        rows.append(
            {
                "section": SECTION,
                "metric": f"daemon RSS (MB, sum of each daemon's largest sample), {size:,} URLs",
                "value": total,
                "baseline": f"the same at {rss_before[0]:,} URLs" if rss_before else None,
                "baseline_value": before,
                "ratio": total / before if before else None,
                "target": "flat (ratio <= 1.2)" if before else None,
                "met": total <= before * 1.2 if before else None,
                "note": ", ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items()))
                + "; VmRSS read at each tenth of the run",
            }
        )
    return rows


def _rows(
    results: dict[int, dict[str, list[dict[str, Any]]]],
    rss: dict[str, float],
    profile: dict[str, list[tuple[str, float]]],
    *,
    quick: bool,
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    first_cpu: float | None = None
    rss_base: tuple[int, dict[str, float]] | None = None  # the 20k run's, or the first size's
    for size, runs in results.items():
        ours, peer = runs["ours"], runs["peer"]
        pps = statistics.median(r["pps"] for r in ours)
        peer_pps = statistics.median(r["pps"] for r in peer)
        paired = statistics.median(o["pps"] / p["pps"] for o, p in zip(ours, peer, strict=True))
        per_page = _by_component(
            {k: statistics.median(r["cpu"][k] / r["stored"] * 1000 for r in ours) for k in ours[0]["cpu"]}
        )
        total_ms = sum(per_page.values())
        peer_ms = statistics.median(r["cpu"] / r["stored"] * 1000 for r in peer)
        first_cpu = first_cpu or total_ms
        rows += [
            {
                "section": SECTION,
                "metric": f"pages/s, {size:,} URLs",
                "value": pps,
                "baseline": "Scrapy + trafilatura -> JSON Lines",
                "baseline_value": peer_pps,
                "ratio": paired,
                "target": ">= 3x the peer",
                "met": paired >= 3,
                "note": f"median of {len(ours)} alternating pairs; ratio = median of paired ratios; runs ours "
                + ", ".join(f"{r['pps']:.1f}" for r in ours)
                + " / peer "
                + ", ".join(f"{r['pps']:.1f}" for r in peer),
            },
            {
                "section": SECTION,
                "metric": f"CPU ms per page, {size:,} URLs (all our processes)",
                "value": total_ms,
                "baseline": "Scrapy + trafilatura process",
                "baseline_value": peer_ms,
                "note": ", ".join(f"{k} {v:.1f}" for k, v in sorted(per_page.items(), key=lambda kv: -kv[1])),
            },
            {
                "section": SECTION,
                "metric": f"CPU per page at {size:,} vs the smallest size",
                "value": total_ms,
                "baseline": f"CPU ms per page at {min(results):,}",
                "baseline_value": first_cpu,
                "target": "within 10%",
                "met": total_ms <= first_cpu * 1.1,
            },
        ]
        rows += _within_run_rows(size, ours, rss_base)
        if size == 20_000 or rss_base is None:
            rss_base = (size, _run_rss(ours))
    rows.append(
        {
            "section": SECTION,
            "metric": "peak RSS per daemon (MB)",
            "value": max(rss.values()) if rss else None,
            "note": ", ".join(f"{k} {v:.0f}" for k, v in sorted(rss.items())),
        }
    )
    for name, top in profile.items():
        rows.append(
            {
                "section": PROFILE_SECTION,
                "metric": name,
                "note": "; ".join(f"{frame} {share:.0%}" for frame, share in top) or "no samples",
            }
        )
    if quick:
        for r in rows:
            r["met"] = None
    return rows
