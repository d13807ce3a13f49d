"""End to end on real services: the hot-path daemons (and discovery) as subprocesses crawl the local web.

Every URL must come out stored (row in PostgreSQL, objects in S3) or dead-lettered with a
reason — 0 lost, 0 duplicate rows, 0 duplicate objects — also when a daemon is SIGKILLed
mid-stream and restarted.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import asyncpg
import pytest

from tests.helpers.drills import DEMO_CRAWL_ENV
from tests.helpers.ledger import crawl_batch, ledger_states
from tests.helpers.pipeline import HOT_PATH, Pipeline
from workers.demoweb import DemoURL, DemoWeb, demo_urls
from workers.ledger import BatchProgress
from workers.settings import Settings
from workers.storage import PageStore
from workers.urls import normalize_url, url_hash

pytestmark = pytest.mark.integration

# Short timeouts keep the demo's slow/stalling pages from dominating the run.
TIMEOUT_ENV = DEMO_CRAWL_ENV


def _urls(web: DemoWeb, *, hosts: int, seed: int) -> list[DemoURL]:
    # JavaScript-only pages go to the rich renderer, tested on its own (tests/integration/test_rich_*).
    return demo_urls(
        port=web.port, hosts=hosts, per_host=10, seed=seed, exclude_kinds={"spa"}, timeout_delay_s=6
    )


async def _rows(settings: Settings, batch: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT url_hash, url, warc_key FROM pages WHERE batch = $1",
            batch,
        )
        return rows
    finally:
        await conn.close()


async def _check_accounted(
    settings: Settings, urls: list[DemoURL], progress: BatchProgress, batch: str
) -> None:
    summary = progress.summary()
    assert progress.complete and summary["in_flight"] == 0, summary
    assert summary["requested"] == len(urls)
    states = await ledger_states(settings, batch)
    stored = {h for h, r in states.items() if r["state"] == "stored"}
    for u in urls:
        h = url_hash(normalize_url(u.url))
        row = states[h]
        if u.expected == "stored":
            assert row["state"] == "stored", f"{u.kind} {u.url} expected stored; got {dict(row)}"
        elif u.expected == "skipped":
            assert row["state"] in ("skipped", "stored"), (
                f"{u.kind} {u.url} expected skipped; got {dict(row)}"
            )
        elif u.expected == "dead_lettered":
            assert row["state"] == "dead" and row["reason"], (
                f"{u.kind} {u.url} expected a dead letter: {dict(row)}"
            )

    rows = await _rows(settings, batch)
    hashes = {r["url_hash"] for r in rows}
    assert len(hashes) == len(rows), "one row per URL"
    want = {url_hash(normalize_url(u.url)) for u in urls if u.expected == "stored"}
    assert want <= hashes, "every stored URL has its row"
    assert {h for h in hashes if h in states} <= stored | {
        h for h, r in states.items() if r["state"] == "unchanged"
    }
    async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
        report = await store.fsck(grace_s=0)
    # Objects nobody references can exist (other tests share the bucket; a SIGKILL leaves
    # garbage the collector removes), but no row may point at content that is not there.
    assert not report.missing, report.missing[:5]


async def _crawl(settings: Settings, urls: list[DemoURL], batch: str, timeout_s: float) -> BatchProgress:
    return await crawl_batch(settings, [u.url for u in urls], batch, timeout_s=timeout_s)


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
    assert progress.complete, (progress.summary(), logs)
    await _check_accounted(settings, urls, progress, batch)
    assert all(code == 0 for code in codes.values()), (codes, logs)  # graceful drain on SIGTERM
    print("e2e summary", progress.summary())


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
    assert progress.complete, (progress.summary(), logs)
    await _check_accounted(settings, urls, progress, batch)
