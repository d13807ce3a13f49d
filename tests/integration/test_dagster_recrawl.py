"""A re-crawl of a completed stored_pages partition shows as in progress, then complete with the
new batch's metadata (batch, skips by reason, pages/s, duration, DLQ breakdown, failed URLs,
a preview of stored pages read through the storage layer).

The completion sensor runs through build_sensor_context against the real PostgreSQL and S3;
its events are recorded in a Dagster instance as the daemon records them, and the test reads
the partition's state back the way the UI does (its latest materialisation, its history).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import asyncpg
import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetMaterialization,
    DagsterInstance,
    SensorResult,
    build_sensor_context,
)

from crawl_assets.aio import run_sync
from crawl_assets.resources import PostgresResource, S3Resource
from crawl_assets.sensors.completion import COMPLETE_CHECK, build_completion_sensor
from crawl_assets.stages import STORED_PAGES
from workers.ledger import BatchSpec, Candidate, Outcome, admit, create_batch, mark_published, record_outcomes
from workers.messages import ProcessedPage, Scope, compress_html
from workers.settings import DagsterSettings, Settings
from workers.storage import PageStore
from workers.storage.migrate import apply_migrations
from workers.urls import host_of, url_hash

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::dagster_shared.utils.warnings.BetaWarning"),
]

KEY = "011-015"


def _page(url: str, batch: str, n: int) -> ProcessedPage:
    now = time.time()
    return ProcessedPage(
        url=url,
        url_hash=url_hash(url),
        host=host_of(url),
        final_url=url,
        status=200,
        route="fast",
        score=90,
        fetched_at=now,
        processed_at=now,
        content_hash=f"{n:032x}",
        html_zstd=compress_html(f"<html><title>Page {n}</title><body>x</body></html>".encode()),
        markdown=f"# Page {n} of the re-crawl\n\nFirst paragraph of page {n}.\n\nSecond paragraph.",
        title=f"Page {n}",
        word_count=9,
        text_hash=f"{n:032x}",
        simhash=n,
        batch=batch,
        rank=n,
    )


async def _publish(settings: Settings, batch: str, urls: list[str]) -> None:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        await apply_migrations(conn)
        await create_batch(conn, BatchSpec(batch=batch, origin="dagster", scope=Scope(), partition_key=KEY))
        async with conn.transaction():
            await admit(
                conn,
                batch=batch,
                scope=None,
                candidates=[Candidate(u, url_hash(u), host_of(u), 0, rank=i) for i, u in enumerate(urls, 1)],
            )
        await mark_published(conn, batch)
    finally:
        await conn.close()


async def _crawl(settings: Settings, batch: str, stored: list[str], dead: list[str]) -> None:
    """What the pipeline leaves: pages in the store, outcomes in the ledger."""
    async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
        await store.save_batch([_page(u, batch, i) for i, u in enumerate(stored, 1)])
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        async with conn.transaction():
            await record_outcomes(
                conn,
                [Outcome(batch, url_hash(u), "stored", route="fast", example=u) for u in stored]
                + [Outcome(batch, url_hash(u), "dead", "PermanentFetchError", example=u) for u in dead],
            )
    finally:
        await conn.close()


def _latest(instance: DagsterInstance) -> dict[str, Any]:
    record = instance.fetch_materializations(STORED_PAGES, limit=50).records
    mats = [r.asset_materialization for r in record if r.asset_materialization is not None]
    ours = [m for m in mats if m.partition == KEY]
    assert ours, "the partition was never materialised"
    return {k: v.value for k, v in ours[0].metadata.items()}


def test_a_recrawl_shows_in_progress_then_complete_with_the_new_batch(settings: Settings) -> None:
    instance = DagsterInstance.ephemeral()
    sensor = build_completion_sensor(DagsterSettings(), [KEY])
    resources = {
        "postgres": PostgresResource.from_settings(settings.postgres),
        "s3": S3Resource.from_settings(settings.s3),
    }
    cursor: str | None = None

    def tick() -> SensorResult:
        nonlocal cursor
        result = sensor(build_sensor_context(instance=instance, cursor=cursor, resources=resources))
        assert isinstance(result, SensorResult)
        for event in result.asset_events:  # what the sensor daemon does with them
            instance.report_runless_asset_event(event)
        cursor = result.cursor
        return result

    run = uuid.uuid4().hex[:6]
    urls = [f"https://r{i}-{run}.demo.test/" for i in range(1, 5)]
    first, second = f"{KEY}@a{run}", f"{KEY}@b{run}"

    run_sync(_publish(settings, first, urls))
    run_sync(_crawl(settings, first, stored=urls, dead=[]))
    tick()
    done = _latest(instance)
    assert (done["status"], done["batch"], done["stored"], done["dead_lettered"]) == ("complete", first, 4, 0)
    # Three of the four pages, in url_hash order (the random run id decides which three).
    previews = [done[f"preview_{n}"] for n in (1, 2, 3)]
    expected = {
        f"Page {i} — {url} — Page {i} of the re-crawl / First paragraph of page {i}. / Second paragraph."
        for i, url in enumerate(urls, 1)
    }
    assert len(set(previews)) == 3 and set(previews) <= expected, previews

    # The re-crawl starts: the partition's current state is the new batch, in progress.
    run_sync(_publish(settings, second, urls))
    started = tick()
    now = _latest(instance)
    assert (now["status"], now["batch"], now["requested"], now["in_flight"]) == ("in progress", second, 4, 4)
    warn = [e for e in started.asset_events if isinstance(e, AssetCheckEvaluation)]
    assert [(e.check_name, e.passed, e.severity) for e in warn] == [
        (COMPLETE_CHECK, False, AssetCheckSeverity.WARN)
    ]
    history = [
        r.asset_materialization
        for r in instance.fetch_materializations(STORED_PAGES, limit=50).records
        if r.asset_materialization is not None and r.asset_materialization.partition == KEY
    ]
    assert [m.metadata["batch"].value for m in history] == [second, first]  # the old one is history

    # Half of it is stored, half dead-lettered: complete, with the new batch's metadata.
    run_sync(_crawl(settings, second, stored=urls[:2], dead=urls[2:]))
    finished = tick()
    final = _latest(instance)
    assert (final["status"], final["batch"], final["stored"], final["dead_lettered"]) == (
        "complete",
        second,
        2,
        2,
    )
    assert final["dead_by_reason"] == "PermanentFetchError: 2"
    assert "PermanentFetchError" in final["dlq_breakdown"] and urls[2] in final["failed_sample"]
    assert final["pages_per_s"] >= 0 and final["duration_s"] >= 0 and final["completed_at"] != "-"
    assert final["preview_1"].startswith(("Page 1 — ", "Page 2 — "))  # the re-crawl stored pages 1 and 2
    passed = {e.check_name: e.passed for e in finished.asset_events if isinstance(e, AssetCheckEvaluation)}
    assert passed == {COMPLETE_CHECK: True, "dlq_rate_below_threshold": False}
    assert next(m for m in finished.asset_events if isinstance(m, AssetMaterialization)).partition == KEY
