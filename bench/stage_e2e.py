"""End to end: pages/s through the whole hot path on 2 cores, real pages, real services.

Real SeaweedFS, Tansu (its log in S3, as `streamcrawl up` runs it) and PostgreSQL; the
daemons as separate processes exactly as supervisord runs them (ingestor, router, two fast
extractors, storage writer); the readability pages of ../shared/data served by the demo
web under 100 mirror hosts (``mNN.readability.demo.test``), so the crawl spreads over
hosts like a crawl of real sites. Politeness delays are off (it is our own loopback
server). Baseline, same run, same pages: a plain single-process script that fetches with
aiohttp, extracts with BeautifulSoup ``get_text``, INSERTs each row and PUTs each page.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from bs4 import BeautifulSoup
from minio import Minio

from tests.helpers.ledger import crawl_batch
from tests.helpers.pipeline import Pipeline
from tests.helpers.services import production_group_timing, start_kafka, start_postgres, start_s3
from workers.demoweb import DemoResolver, DemoWeb
from workers.demoweb.data import DataFiles, locate_data_dir
from workers.settings import IngestorSettings, Settings, StackSettings

__all__ = ["bench"]

MIRRORS = 100
WORKERS = ("ingestor", "router", "fast_extractor", "fast_extractor#2", "storage_writer", "discovery")
BENCH_ENV = {
    "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": '{"*.demo.test": "127.0.0.1"}',
    "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "true",
    "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0",
    "STREAMCRAWL_INGESTOR_PER_HOST_CONCURRENCY": "8",
    # Many host names on one loopback address stand for many sites: no per-IP cap.
    "STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY": "0",
}


def _urls(port: int, count: int, offset: int) -> list[str]:
    names = sorted(DataFiles(locate_data_dir()).readability)
    out = []
    for i in range(offset, offset + count):
        mirror, page = divmod(i, len(names))
        out.append(
            f"http://m{mirror % MIRRORS}.readability.demo.test:{port}/{names[page]}/?copy={mirror // MIRRORS}"
        )
    return out


def _proc_stats(pids: list[int]) -> tuple[float, int]:
    """(CPU seconds, summed peak RSS bytes) of the given processes, from /proc."""
    cpu, rss = 0.0, 0
    tick = 100.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            cpu += (int(fields[11]) + int(fields[12])) / tick
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    rss += int(line.split()[1]) * 1024
        except (OSError, IndexError, ValueError):
            continue
    return cpu, rss


async def _pipeline_run(settings: Settings, urls: list[str], batch: str) -> float:
    started = time.monotonic()
    progress = await crawl_batch(settings, urls, batch, timeout_s=600)
    summary = progress.summary()
    if summary["in_flight"] or summary["dead_lettered"]:
        raise RuntimeError(f"bench crawl incomplete: {summary}")
    return len(urls) / (time.monotonic() - started)


async def _baseline(settings: Settings, urls: list[str], concurrency: int) -> float:
    """The peer script: fetch, BeautifulSoup get_text, INSERT + PUT one page at a time."""
    s3 = settings.s3
    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=False)
    conn = await asyncpg.connect(settings.postgres.dsn())
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS baseline_pages (url text PRIMARY KEY, title text, text text)"
    )
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    lock = asyncio.Lock()
    connector = aiohttp.TCPConnector(limit=concurrency, resolver=DemoResolver())

    async def worker(session: aiohttp.ClientSession) -> None:
        while not queue.empty():
            url = queue.get_nowait()
            async with session.get(url) as resp:
                body = await resp.read()
            soup = BeautifulSoup(body, "html.parser")
            title = soup.title.get_text() if soup.title else ""
            text = soup.get_text(" ", strip=True)
            async with lock:
                await conn.execute(
                    "INSERT INTO baseline_pages VALUES ($1, $2, $3) ON CONFLICT (url) DO UPDATE SET text = $3",
                    url,
                    title,
                    text,
                )
            key = f"baseline/{abs(hash(url))}.html"
            await asyncio.to_thread(client.put_object, s3.bucket, key, io.BytesIO(body), len(body))

    started = time.monotonic()
    try:
        async with aiohttp.ClientSession(connector=connector) as session:
            await asyncio.gather(*(worker(session) for _ in range(concurrency)))
    finally:
        await conn.close()
    return len(urls) / (time.monotonic() - started)


async def bench(*, quick: bool) -> list[dict[str, Any]]:
    with contextlib.ExitStack() as services:  # every service started is stopped, even on failure
        base = Path(tempfile.mkdtemp(prefix="streamcrawl-bench-e2e-"))
        services.callback(shutil.rmtree, base, ignore_errors=True)
        os.chmod(base, 0o711)  # PostgreSQL runs as the `postgres` user when we are root
        s3_c, s3 = start_s3(base / "s3")
        services.callback(s3_c.stop)
        pg_c, pg = start_postgres(base / "pg")
        services.callback(pg_c.stop)
        kafka_c, kafka, _ = start_kafka(base / "kafka", s3=s3)
        kafka = production_group_timing(kafka)
        services.callback(kafka_c.stop)
        return await _measure(
            base,
            settings=Settings(
                stack=StackSettings(data_dir=base / "data"),
                kafka=kafka,
                postgres=pg,
                s3=s3,
                ingestor=IngestorSettings(allow_private_networks=True),
            ),
            quick=quick,
        )
    raise AssertionError("unreachable")


async def _measure(base: Path, *, settings: Settings, quick: bool) -> list[dict[str, Any]]:
    web = DemoWeb(port=0, processes=1)
    await web.start()
    pipeline = Pipeline(settings, log_dir=base / "logs", extra_env=BENCH_ENV)
    try:
        pipeline.start(*WORKERS)
        n = 600 if quick else 3000
        runs = 1 if quick else 3
        await _pipeline_run(settings, _urls(web.port, 300, 10_000_000), "warmup")
        cpu0, _ = _proc_stats([p.pid for p in pipeline.procs.values()])
        rates = [await _pipeline_run(settings, _urls(web.port, n, i * n), f"bench-{i}") for i in range(runs)]
        cpu1, rss = _proc_stats([p.pid for p in pipeline.procs.values()])
        # The same crawl with the opt-in segment layout (one object per batch of parts).
        pipeline.procs["storage_writer"].terminate()
        pipeline.procs["storage_writer"].wait(timeout=30)
        pipeline.env["STREAMCRAWL_STORAGE_OBJECT_LAYOUT"] = "segment"
        pipeline.start("storage_writer")
        segment_rates = [
            await _pipeline_run(settings, _urls(web.port, n, (runs + i) * n), f"bench-seg-{i}")
            for i in range(1 if quick else 2)
        ]
        pipeline.stop()
        base_n = 200 if quick else 400
        base_rates = [
            await _baseline(settings, _urls(web.port, base_n, 20_000_000 + i * base_n), 100)
            for i in range(1 if quick else 3)
        ]
    finally:
        pipeline.stop()
        await web.stop()
    ours, theirs = statistics.median(rates), statistics.median(base_rates)
    return [
        {
            "section": "end to end (2 cores)",
            "metric": "pages/s, fetch → store, real pages",
            "value": ours,
            "baseline": "one-process script: aiohttp + BeautifulSoup + INSERT/PUT per page",
            "baseline_value": theirs,
            "target": ">= 300 pages/s",
            "met": ours >= 300,
            "note": f"median of {runs} crawls of {n} URLs over {MIRRORS} hosts; 5 daemons; broker log in S3",
        },
        {
            "section": "end to end (2 cores)",
            "metric": "pages/s, same, STREAMCRAWL_STORAGE_OBJECT_LAYOUT=segment",
            "value": statistics.median(segment_rates),
            "baseline": "same script",
            "baseline_value": theirs,
            "target": ">= 300 pages/s",
            "met": statistics.median(segment_rates) >= 300,
            "note": f"median of {len(segment_rates)} crawls of {n} URLs; parts packed into one object per batch",
        },
        {
            "section": "end to end (2 cores)",
            "metric": "CPU s per page (all daemons)",
            "value": (cpu1 - cpu0) / (n * runs),
            "note": "user+system time of the daemon processes over the page-layout crawls",
        },
        {
            "section": "end to end (2 cores)",
            "metric": "peak RSS of all daemons (MB)",
            "value": rss / 2**20,
            "note": "sum of VmHWM",
        },
    ]
