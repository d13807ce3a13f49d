"""End to end on real services: the four hot-path daemons as subprocesses crawl the local web.

Every URL must come out stored (row in PostgreSQL, objects in S3) or dead-lettered with a
reason — 0 lost, 0 duplicate rows, 0 duplicate objects — also when a daemon is SIGKILLed
mid-stream and restarted.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from minio import Minio

from tests.helpers.pipeline import HOT_PATH, Pipeline
from workers.cli.cmd_crawl import crawl
from workers.demoweb import DemoURL, DemoWeb, demo_urls
from workers.frontier import parse_list_lines
from workers.progress import BatchProgress
from workers.settings import Settings
from workers.urls import normalize_url, url_hash

pytestmark = pytest.mark.integration

# Short timeouts keep the demo's slow/stalling pages from dominating the run.
TIMEOUT_ENV = {
    "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": '{"*.demo.test": "127.0.0.1"}',
    "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "true",
    "STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S": "3",
    "STREAMCRAWL_INGESTOR_READ_TIMEOUT_S": "2",
    "STREAMCRAWL_INGESTOR_MAX_RETRIES": "1",
    "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0.05",
    "STREAMCRAWL_INGESTOR_CRAWL_DELAY_CAP_S": "0.2",
    "STREAMCRAWL_INGESTOR_RETRY_AFTER_CAP_S": "2",
    # Failing pages are re-queued once, half a second later, then dead-lettered.
    "STREAMCRAWL_INGESTOR_MAX_REQUEUES": "1",
    "STREAMCRAWL_INGESTOR_REQUEUE_BASE_DELAY_S": "0.5",
    "STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY": "64",  # the whole demo web is 127.0.0.1
}


@pytest.fixture
async def demo_web() -> AsyncIterator[DemoWeb]:
    web = DemoWeb(port=0, processes=1)
    await web.start()
    try:
        yield web
    finally:
        await web.stop()


def _urls(web: DemoWeb, *, hosts: int, seed: int) -> list[DemoURL]:
    # JavaScript-only pages go to the rich renderer, tested on its own (tests/integration/test_rich_*).
    return demo_urls(
        port=web.port, hosts=hosts, per_host=10, seed=seed, exclude_kinds={"spa"}, timeout_delay_s=6
    )


async def _rows(settings: Settings, batch: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT url_hash, url, html_key, markdown_key, rendered_key, skipped FROM pages WHERE batch = $1",
            batch,
        )
        return rows
    finally:
        await conn.close()


def _object_keys(settings: Settings, prefixes: set[str]) -> list[str]:
    s3 = settings.s3
    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=s3.secure)
    keys: list[str] = []
    for prefix in sorted(prefixes):
        keys += [o.object_name for o in client.list_objects(s3.bucket, prefix=prefix, recursive=True)]
    return keys


async def _check_accounted(
    settings: Settings, urls: list[DemoURL], progress: BatchProgress, batch: str
) -> None:
    summary = progress.summary()
    assert summary["lost"] == 0, summary
    assert summary["requested"] == len(urls)

    stored = progress.seen.get("storage.saved", set())
    for u in urls:
        h = url_hash(normalize_url(u.url))
        if u.expected in ("stored", "skipped"):
            assert h in stored, f"{u.kind} {u.url} expected stored; reason: {progress.reasons.get(h)}"
        elif u.expected == "dead_lettered":
            assert h not in stored and h in progress.reasons, f"{u.kind} {u.url} expected a dead letter"
            assert progress.reasons[h].strip(), "a dead letter carries its reason"

    rows = await _rows(settings, batch)
    hashes = [r["url_hash"] for r in rows]
    assert len(hashes) == len(set(hashes)) == len(stored), "one row per stored URL, no duplicates"
    keys = [k for r in rows for k in (r["html_key"], r["markdown_key"], r["rendered_key"]) if k]
    prefixes = {k.rsplit("/", 1)[0] + "/" for k in keys}
    objects = await asyncio.to_thread(_object_keys, settings, prefixes)
    assert sorted(objects) == sorted(keys), "exactly one object per stored part, nothing else"


async def _crawl(settings: Settings, urls: list[DemoURL], batch: str, timeout_s: float) -> BatchProgress:
    parsed = parse_list_lines([u.url for u in urls], scheme="http")
    progress = await crawl(settings, parsed, batch=batch, wait=True, timeout_s=timeout_s)
    assert progress is not None
    return progress


async def test_every_url_is_stored_or_dead_lettered(
    settings: Settings, demo_web: DemoWeb, tmp_path: Path
) -> None:
    urls = _urls(demo_web, hosts=52, seed=1)
    assert len(urls) >= 500 and len({u.url.split("/")[2] for u in urls}) >= 50
    assert {u.expected for u in urls} >= {"stored", "dead_lettered", "skipped"}
    pipeline = Pipeline(settings, log_dir=tmp_path / "logs", extra_env=TIMEOUT_ENV)
    pipeline.start(*HOT_PATH)
    batch = f"e2e-{time.time_ns()}"
    try:
        progress = await _crawl(settings, urls, batch, timeout_s=240)
    finally:
        codes = pipeline.stop()
    logs = {stage: pipeline.logs(stage) for stage in HOT_PATH}
    assert progress.summary()["lost"] == 0, (progress.summary(), logs)
    await _check_accounted(settings, urls, progress, batch)
    assert all(code == 0 for code in codes.values()), (codes, logs)  # graceful drain on SIGTERM
    print("e2e summary", progress.summary(), Counter(r.split(":")[1] for r in progress.reasons.values()))


async def test_nothing_lost_when_workers_are_sigkilled(
    settings: Settings, demo_web: DemoWeb, tmp_path: Path
) -> None:
    urls = _urls(demo_web, hosts=51, seed=2)
    assert len(urls) >= 500
    pipeline = Pipeline(settings, log_dir=tmp_path / "logs", extra_env=TIMEOUT_ENV)
    pipeline.start(*HOT_PATH)
    batch = f"e2e-kill-{time.time_ns()}"
    crawl_task = asyncio.create_task(_crawl(settings, urls, batch, timeout_s=300))
    try:
        # Kill each downstream stage once while pages are flowing, then restart it.
        conn = await asyncpg.connect(settings.postgres.dsn())
        try:
            for stage, at_rows in (
                ("storage_writer", 60),
                ("router", 150),
                ("fast_extractor", 250),
                ("ingestor", 350),
            ):
                deadline = time.monotonic() + 120
                while time.monotonic() < deadline and not crawl_task.done():
                    try:
                        n = await conn.fetchval("SELECT count(*) FROM pages WHERE batch = $1", batch)
                    except asyncpg.UndefinedTableError:  # the writer has not migrated yet
                        n = 0
                    if n >= at_rows:
                        break
                    await asyncio.sleep(0.1)
                pipeline.kill(stage)
                await asyncio.sleep(0.5)
                pipeline.start(stage)
        finally:
            await conn.close()
        progress = await crawl_task
    finally:
        pipeline.stop()
    logs = {stage: pipeline.logs(stage) for stage in HOT_PATH}
    assert progress.summary()["lost"] == 0, (progress.summary(), logs)
    await _check_accounted(settings, urls, progress, batch)
