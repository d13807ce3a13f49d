"""Control-plane assets and jobs through materialize()/execute_in_process() against the real
broker, PostgreSQL and S3 started by the session fixtures."""

from __future__ import annotations

import sys
import time
import uuid
import zipfile
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from dagster import DagsterInstance, materialize
from dagster._core.storage.tags import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

from crawl_assets.aio import run_sync
from crawl_assets.assets.frontier import build_crawl_frontier
from crawl_assets.assets.lists import snapshot_object_key, tranco_list
from crawl_assets.definitions import build_definitions
from crawl_assets.partitions import TRANCO_PARTITIONS, frontier_partitions
from crawl_assets.resources import KafkaResource, PostgresResource, S3Resource
from workers.kafka import make_consumer
from workers.lag import high_watermarks
from workers.messages import CrawlRequest, ProcessedPage, compress_html, decode
from workers.settings import DagsterSettings, Settings, StorageSettings
from workers.storage import PageStore
from workers.topics import CRAWL_REQUEST, REGISTRY

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::dagster_shared.utils.warnings.BetaWarning"),
]
TOP10K = Path(__file__).resolve().parents[3] / "shared" / "data" / "tranco" / "top10k.csv"
SMALL = DagsterSettings(frontier_max_rank=10, frontier_partition_size=5)


def resources(settings: Settings) -> dict[str, Any]:
    return {
        "kafka": KafkaResource.from_settings(settings.kafka),
        "postgres": PostgresResource.from_settings(settings.postgres),
        "s3": S3Resource.from_settings(settings.s3),
    }


def load_list(settings: Settings, instance: DagsterInstance, path: Path, list_id: str) -> dict[str, Any]:
    instance.add_dynamic_partitions(TRANCO_PARTITIONS.name or "", [list_id])
    result = materialize(
        [tranco_list],
        partition_key=list_id,
        instance=instance,
        resources=resources(settings),
        run_config={"ops": {"tranco_list": {"config": {"path": str(path)}}}},
    )
    assert result.success
    mat = result.asset_materializations_for_node("tranco_list")[0]
    return {k: v.value for k, v in mat.metadata.items()}


def test_tranco_list_loads_top10k(settings: Settings) -> None:
    list_id = f"top10k-{uuid.uuid4().hex[:6]}"
    started = time.perf_counter()
    meta = load_list(settings, DagsterInstance.ephemeral(), TOP10K, list_id)
    elapsed = time.perf_counter() - started
    print(f"\ntranco_list top10k.csv: {elapsed:.2f} s end to end (asset body {meta['load_seconds']} s)")
    assert meta["row_count"] == 10_000 and meta["rejected_count"] == 0 and meta["max_rank"] == 10_000
    assert "| 1 | google.com |" in meta["top_ranks"]

    async def count() -> int:
        conn = await asyncpg.connect(settings.postgres.dsn())
        try:
            return int(await conn.fetchval("SELECT count(*) FROM tranco_lists WHERE list_id = $1", list_id))
        finally:
            await conn.close()

    assert run_sync(count()) == 10_000
    S3Resource.from_settings(settings.s3).client().stat_object(
        settings.s3.bucket, snapshot_object_key(list_id)
    )


def test_tranco_list_counts_rejects_in_a_zip_and_explains_offline(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "tranco-2024-01-02.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("top-1m.csv", "1,a.com\n2,not a domain\n3,B.com.\nfour,c.com\n5,a.com\n")
    meta = load_list(settings, DagsterInstance.ephemeral(), archive, f"zip-{uuid.uuid4().hex[:6]}")
    assert (meta["row_count"], meta["rejected_count"]) == (2, 3)

    monkeypatch.setitem(sys.modules, "tranco", None)  # as on a machine without the package
    instance = DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(TRANCO_PARTITIONS.name or "", ["X5Y7N"])
    result = materialize(
        [tranco_list],
        partition_key="X5Y7N",
        instance=instance,
        resources=resources(settings),
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("tranco_list")
    assert failure is not None and failure.error is not None and failure.error.cause is not None
    assert failure.error.cause.cls_name == "ConfigError"
    assert "pip install tranco" in failure.error.cause.message and "`path`" in failure.error.cause.message


async def _published(settings: Settings, start: dict[int, int]) -> list[CrawlRequest]:
    ends = (await high_watermarks(settings.kafka, [CRAWL_REQUEST])).get(CRAWL_REQUEST.name, {})
    consumer = make_consumer(settings.kafka, group_id=None)
    await consumer.start()
    out: list[CrawlRequest] = []
    try:
        tps = [TopicPartition(CRAWL_REQUEST.name, p) for p in ends]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and any(
            [await consumer.position(tp) < ends[tp.partition] for tp in tps]
        ):
            for records in (await consumer.getmany(timeout_ms=300)).values():
                out += [decode(r.value, CrawlRequest) for r in records]
    finally:
        await consumer.stop()
    return out


async def store_pages(settings: Settings, requests: list[CrawlRequest]) -> None:
    now = time.time()
    pages = [
        ProcessedPage(
            url=r.url,
            url_hash=r.url_hash,
            host=r.host,
            final_url=r.url,
            status=200,
            route="fast",
            score=100,
            fetched_at=now,
            processed_at=now,
            content_hash=r.url_hash,
            html_zstd=compress_html(b"<p>hi</p>"),
            markdown="hi",
            batch=r.batch,
            rank=r.rank,
        )
        for r in requests
    ]
    async with PageStore(settings.postgres, settings.s3, StorageSettings()) as store:
        await store.save_batch(pages)


def test_frontier_publishes_batches_skips_stored_and_recrawls(settings: Settings, tmp_path: Path) -> None:
    run = uuid.uuid4().hex[:6]
    csv = tmp_path / "list.csv"
    csv.write_text("".join(f"{i},site-{i:03d}-{run}.demo.test\n" for i in range(1, 9)))
    instance = DagsterInstance.ephemeral()
    list_id = f"frontier-{run}"
    load_list(settings, instance, csv, list_id)
    frontier = build_crawl_frontier(frontier_partitions(SMALL))
    template = "http://{domain}:9/"

    def publish(
        *, recrawl: bool = False, tags: dict[str, str] | None = None, key: str | None = "01-05"
    ) -> tuple[dict[str, Any], list[CrawlRequest]]:
        start = run_sync(high_watermarks(settings.kafka, [CRAWL_REQUEST])).get(CRAWL_REQUEST.name, {})
        result = materialize(
            [frontier],
            partition_key=key,
            tags=tags,
            instance=instance,
            resources=resources(settings),
            run_config={
                "ops": {
                    "crawl_frontier": {
                        "config": {"list_id": list_id, "url_template": template, "recrawl": recrawl}
                    }
                }
            },
        )
        assert result.success
        mats = result.asset_materializations_for_node("crawl_frontier")
        sent = [r for r in run_sync(_published(settings, start)) if run in r.host]
        return {k: v.value for k, v in mats[0].metadata.items()}, sent

    meta, sent = publish()
    assert (meta["published"], meta["skipped_stored"]) == (5, 0)
    first_batch = meta["batches"]
    assert first_batch.startswith("01-05@")  # one batch per materialisation of a partition
    assert sorted((r.rank, r.batch, r.url) for r in sent) == [
        (i, first_batch, f"http://site-{i:03d}-{run}.demo.test:9/") for i in range(1, 6)
    ]
    assert all(r.ctx is not None and r.ctx.depth == 0 and r.ctx.scope is not None for r in sent)
    run_sync(store_pages(settings, sent[:2]))
    meta, sent = publish()
    assert (meta["published"], meta["skipped_stored"], len(sent)) == (3, 2, 3)
    meta, sent = publish(recrawl=True)
    assert (meta["published"], len(sent)) == (5, 5) and all(r.recrawl for r in sent)

    # A backfill of a range is one run publishing one batch per partition.
    meta, sent = publish(
        key=None, tags={ASSET_PARTITION_RANGE_START_TAG: "01-05", ASSET_PARTITION_RANGE_END_TAG: "06-10"}
    )
    assert meta["partitions"] == 2 and meta["published"] == 6
    assert sorted({(r.batch or "").split("@")[0] for r in sent}) == ["01-05", "06-10"]

    async def batches() -> list[tuple[str, int, int, str]]:
        conn = await asyncpg.connect(settings.postgres.dsn())
        try:
            rows = await conn.fetch(
                "SELECT partition_key, requested, skipped, status FROM crawl_batches WHERE list_id = $1"
                " ORDER BY created_at",
                list_id,
            )
        finally:
            await conn.close()
        return [(r["partition_key"], r["requested"], r["skipped"], r["status"]) for r in rows]

    # Every materialisation kept its own batch: 5 published; 3 + 2 already stored; recrawl 5;
    # then the backfill of both ranges (01-05: 2 stored skipped; 06-10: all 3 new).
    assert run_sync(batches()) == [
        ("01-05", 5, 0, "published"),
        ("01-05", 5, 2, "published"),
        ("01-05", 5, 0, "published"),
        ("01-05", 5, 2, "published"),
        ("06-10", 3, 0, "published"),
    ]


def test_dlq_replay_job_runs_in_process(settings: Settings) -> None:
    defs = build_definitions(SMALL, resources=resources(settings))
    result = defs.resolve_job_def("dlq_replay").execute_in_process(
        run_config={"ops": {"replay_dead_letters": {"config": {"topic": "storage.dlq", "dry_run": True}}}},
        instance=DagsterInstance.ephemeral(),
    )
    assert result.success
    observed = [e for e in result.all_events if e.event_type_value == "ASSET_OBSERVATION"]
    assert observed and observed[0].asset_key is not None
    assert observed[0].asset_key.to_user_string() == "storage_dlq"


def test_provision_topics_job_is_idempotent_and_reports_drift(settings: Settings) -> None:
    defs = build_definitions(SMALL, resources=resources(settings))
    result = defs.resolve_job_def("provision_topics").execute_in_process(instance=DagsterInstance.ephemeral())
    assert result.success
    meta = {k: v.value for k, v in result.asset_materializations_for_node("kafka_topics")[0].metadata.items()}
    assert meta["created"] == 0 and meta["existing"] == len(REGISTRY)  # the fixture provisioned them all
    assert meta["drift_count"] == 0 and meta["in_sync"] is True
