"""End to end through the Dagster webserver: a GraphQL backfill of two frontier partitions
of a small demo-web list with link discovery (depth 1), both ``stored_pages`` partitions
materialised by the completion sensor only once their discovered pages are accounted for,
and a poison record handled by the DLQ sensor's runs, then parked.

A whole embedded stack on free ports (S3, broker, PostgreSQL, Dagster webserver + daemon,
supervisord workers without the rich renderer) plus the demo web. Slow (minutes): every
Dagster run is a subprocess and sensors tick every 15-30 s.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from crawl_assets.aio import run_sync
from crawl_assets.schema import ensure_schema
from crawl_assets.tranco import store_snapshot
from tests.helpers import services
from tests.helpers.ports import free_port, free_port_with_grpc
from workers.demoweb.hosts import demo_host, resolve_overrides
from workers.kafka import make_producer
from workers.lists import parse_list_lines
from workers.settings import (
    ApiSettings,
    DagsterSettings,
    IngestorSettings,
    KafkaSettings,
    PostgresSettings,
    S3Settings,
    Settings,
)
from workers.stack.dagster import graphql as dagster_graphql
from workers.stack.demoweb import DemoWebServer
from workers.stack.stack import Stack, stop_recorded
from workers.topics import CRAWL_REQUEST

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]
PARTITIONS = ["01-10", "11-20"]
LIST_ID = "e2e-demo"


@pytest.fixture(scope="module")
def stack() -> Iterator[Settings]:
    base = Path(tempfile.mkdtemp(prefix="streamcrawl-dagster-e2e-"))
    try:
        os.chmod(base, 0o755)  # PostgreSQL runs as `postgres` when the tests run as root
        stack_settings = services.make_stack_settings(base / "data", demo_port=free_port())
        settings = Settings(
            stack=stack_settings,
            kafka=KafkaSettings(
                bootstrap_servers=f"127.0.0.1:{free_port()}",
                session_timeout_ms=2000,
                heartbeat_interval_ms=300,
            ),
            postgres=PostgresSettings(port=free_port()),
            s3=S3Settings(endpoint=f"127.0.0.1:{free_port_with_grpc()}"),
            ingestor=IngestorSettings(allow_private_networks=True, resolve_overrides=resolve_overrides()),
            dagster=DagsterSettings(frontier_max_rank=20, frontier_partition_size=10, dlq_max_attempts=2),
            api=ApiSettings(port=free_port()),
        )
        stack = Stack(settings)
        demo = DemoWebServer(stack=stack_settings, paths=stack.paths)
        try:
            stack.up()
            demo.ensure_running()
            yield settings
        finally:
            demo.stop()
            stop_recorded(stack.paths)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _log_tails(settings: Settings) -> str:
    """The end of every stack log, to see which stage stalled when the test times out."""
    out = []
    for log in sorted(Path(settings.stack.data_dir).rglob("*.log")):
        lines = log.read_text(errors="replace").splitlines()[-3:]
        out.append(f"== {log.name}\n" + "\n".join(line[:300] for line in lines))
    return "\n".join(out)


def graphql(settings: Settings, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return dagster_graphql(settings.stack, query, variables, timeout_s=60)


LAUNCH = """
mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
    __typename
    ... on LaunchBackfillSuccess { backfillId }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
  }
}"""
STORED = """
{ assetOrError(assetKey: {path: ["stored_pages"]}) {
    ... on Asset { assetMaterializations(limit: 20) {
        partition timestamp
        metadataEntries { label ... on IntMetadataEntry { intValue } ... on TextMetadataEntry { text } }
    } } } }"""


async def _prepare(settings: Settings) -> None:
    lines = [f"{i},{demo_host(i)}" for i in range(1, 21)]
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        await ensure_schema(conn)
        await store_snapshot(
            conn, list_id=LIST_ID, source="test", parsed=parse_list_lines(lines, kind="ranked")
        )
    finally:
        await conn.close()
    producer = make_producer(settings.kafka)
    await producer.start()
    try:  # a poison record: the ingestor dead-letters it on every attempt
        await (await producer.send(CRAWL_REQUEST.name, b"\x93poison", key=b"poison"))
    finally:
        await producer.stop()


async def _finished_after_completion(settings: Settings, batch: str) -> list[dict[str, Any]]:
    """URLs of ``batch`` still queued, or finished after the batch was marked complete."""
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        rows = await conn.fetch(
            "SELECT u.url, u.kind, u.state, u.finished_at, b.completed_at FROM crawl_urls u"
            " JOIN crawl_batches b USING (batch) WHERE u.batch = $1"
            " AND (u.state = 'queued' OR u.finished_at > b.completed_at)",
            batch,
        )
        return [dict(r) for r in rows]
    finally:
        await conn.close()


async def _parked(settings: Settings) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        if await conn.fetchval("SELECT to_regclass('dlq_parked')") is None:
            return []
        return list(await conn.fetch("SELECT attempt, reason, payload FROM dlq_parked"))
    finally:
        await conn.close()


def _latest_per_partition(mats: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The metadata of each partition's latest materialisation."""
    latest: dict[str, dict[str, Any]] = {}
    for mat in sorted(mats, key=lambda m: float(m["timestamp"])):
        if mat["partition"]:
            latest[mat["partition"]] = {
                e["label"]: e.get("intValue", e.get("text")) for e in mat["metadataEntries"]
            }
    return latest


def test_backfill_through_graphql_materialises_stored_partitions(stack: Settings) -> None:
    run_sync(_prepare(stack))
    port = stack.stack.demo_port
    launched = graphql(
        stack,
        LAUNCH,
        {
            "params": {
                "assetSelection": [{"path": ["crawl_frontier"]}],
                "partitionNames": PARTITIONS,
                "runConfigData": {
                    "ops": {
                        "crawl_frontier": {
                            "config": {
                                "list_id": LIST_ID,
                                "url_template": f"http://{{domain}}:{port}/",
                                "depth": 1,
                                "scope": "host",
                            }
                        }
                    }
                },
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    started = time.monotonic()
    stored: set[str] = set()
    parked: list[asyncpg.Record] = []
    while time.monotonic() - started < 900 and (stored != set(PARTITIONS) or not parked):
        time.sleep(10)
        mats = graphql(stack, STORED)["assetOrError"].get("assetMaterializations") or []
        latest = _latest_per_partition(mats)  # a batch's start is reported too: `status: in progress`
        stored = {p for p, meta in latest.items() if meta.get("status") == "complete"}
        parked = run_sync(_parked(stack))
    print(f"\nstored partitions {sorted(stored)} and poison parked after {time.monotonic() - started:.0f} s")
    assert stored == set(PARTITIONS), _log_tails(stack)
    for meta in latest.values():
        assert meta["discovered"] > 0 and meta["requested"] > 10, meta  # 10 listed + what their links found
        assert meta["in_flight"] == 0, meta
        late = run_sync(_finished_after_completion(stack, str(meta["batch"])))
        assert not late, f"URLs of {meta['batch']} still open when it was reported complete: {late}"
    assert len(parked) == 1 and parked[0]["payload"] == b"\x93poison"
    # Undecodable is not retryable: parked by the first replay, never re-published.
    assert parked[0]["attempt"] == 1 and parked[0]["reason"] == "not retryable: MessageDecodeError"
