"""Take the screenshots of docs/dagster.md from a running embedded stack.

    .venv/bin/python docs/screenshots.py [--out docs/img]

Starts a throwaway stack on free ports (S3, broker, PostgreSQL, Dagster, workers without
the rich renderer) and the demo web, drives it through Dagster's GraphQL API like an
operator would in the UI (provision topics, load a 40-site demo list, backfill two
frontier partitions), waits for both stored_pages partitions, re-crawls the first one one
link deep (captured while in progress, then complete) and waits for a dead-letter replay,
then captures pages with headless Chromium and stops everything it started.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from workers.demoweb.hosts import demo_host, resolve_overrides
from workers.kafka import make_producer
from workers.settings import (
    DagsterSettings,
    IngestorSettings,
    KafkaSettings,
    PostgresSettings,
    S3Settings,
    Settings,
    StackSettings,
)
from workers.stack.dagster import graphql as dagster_graphql
from workers.stack.demoweb import DemoWebServer
from workers.stack.stack import Stack, stop_recorded
from workers.topics import CRAWL_REQUEST

PAGES = {
    "01-lineage": "/assets/stored_pages?view=lineage&lineageScope=upstream&lineageDepth=6",
    "02-frontier-partitions": "/assets/crawl_frontier?view=partitions",
    "03-stored-pages": "/assets/stored_pages?view=partitions&partition=001-020",
    "11-stored-pages-history": "/assets/stored_pages?view=events&partition=001-020",
    "04-stored-pages-checks": "/assets/stored_pages?view=checks",
    "05-raw-pages-events": "/assets/raw_pages?view=events",
    "06-tranco-list": "/assets/tranco_list?view=events",
    "07-sensors": "/automation",
    "08-runs": "/runs",
    "09-dlq-replay-run": "/runs/{last_replay}",
}
IN_PROGRESS_PAGE = ("10-stored-pages-in-progress", "/assets/stored_pages?view=partitions&partition=001-020")
TALL = {"03-stored-pages", "10-stored-pages-in-progress", "11-stored-pages-history"}
"""Pages whose metadata table runs long: captured 2,000 px tall."""
REPO = {"repositoryName": "__repository__", "repositoryLocationName": "crawl_assets"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def free_port_with_grpc() -> int:
    """A port whose +10000 companion (SeaweedFS gRPC) is free too."""
    while True:
        port = free_port()
        if port + 10000 < 65536:
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def make_settings(base: Path) -> Settings:
    return Settings(
        stack=StackSettings(
            data_dir=base / "data",
            broker_storage="memory",
            seaweed_master_port=free_port_with_grpc(),
            seaweed_volume_port=free_port_with_grpc(),
            seaweed_filer_port=free_port_with_grpc(),
            dagster_port=free_port(),
            supervisor_port=free_port(),
            demo_port=free_port(),
            start_rich_renderer=False,
        ),
        kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}"),
        postgres=PostgresSettings(port=free_port()),
        s3=S3Settings(endpoint=f"127.0.0.1:{free_port_with_grpc()}"),
        ingestor=IngestorSettings(allow_private_networks=True, resolve_overrides=resolve_overrides()),
        dagster=DagsterSettings(frontier_max_rank=100, frontier_partition_size=20, dlq_max_attempts=2),
    )


def graphql(settings: Settings, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    return dagster_graphql(settings.stack, query, variables, timeout_s=120)


BACKFILL = """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on PythonError { message } } }"""
LAUNCH_RUN = """mutation($p: ExecutionParams!) { launchRun(executionParams: $p) {
  __typename ... on PythonError { message } } }"""
ADD_PARTITION = """mutation($r: RepositorySelector!, $k: String!) {
  addDynamicPartition(repositorySelector: $r, partitionsDefName: "tranco_lists", partitionKey: $k) {
  __typename } }"""
LAST_REPLAY = """{ runsOrError(filter: {pipelineName: "dlq_replay"}, limit: 1) {
  ... on Runs { results { runId } } } }"""
STORED = """{ assetOrError(assetKey: {path: ["stored_pages"]}) {
  ... on Asset { assetMaterializations(limit: 20) { partition } } } }"""
LATEST = """{ assetOrError(assetKey: {path: ["stored_pages"]}) { ... on Asset {
  assetMaterializations(partitions: ["001-020"], limit: 1) {
    metadataEntries { label ... on TextMetadataEntry { text } } } } } }"""


async def _poison(settings: Settings) -> None:
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        await (await producer.send(CRAWL_REQUEST.name, b"\x93poison", key=b"poison"))
    finally:
        await producer.stop()


def drive(settings: Settings, base: Path, out: Path, profile: Path) -> None:
    graphql(settings, "mutation { setNuxSeen }")
    graphql(
        settings,
        LAUNCH_RUN,
        {"p": {"selector": {**REPO, "jobName": "provision_topics"}, "runConfigData": {}}},
    )
    csv = base / "demo-list.csv"
    csv.write_text("".join(f"{i},{demo_host(i)}\n" for i in range(1, 41)))
    graphql(settings, ADD_PARTITION, {"r": REPO, "k": "demo-2024-01-01"})
    config = {"ops": {"tranco_list": {"config": {"path": str(csv)}}}}
    graphql(
        settings,
        BACKFILL,
        {
            "p": {
                "assetSelection": [{"path": ["tranco_list"]}],
                "partitionNames": ["demo-2024-01-01"],
                "runConfigData": config,
            }
        },
    )
    time.sleep(60)  # the list run (a subprocess) must finish before the frontier reads it
    asyncio.run(_poison(settings))
    template = f"http://{{domain}}:{settings.stack.demo_port}/"
    frontier = {"ops": {"crawl_frontier": {"config": {"url_template": template}}}}
    graphql(
        settings,
        BACKFILL,
        {
            "p": {
                "assetSelection": [{"path": ["crawl_frontier"]}],
                "partitionNames": ["001-020", "021-040"],
                "runConfigData": frontier,
            }
        },
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and {_status(settings, k) for k in ("001-020", "021-040")} != {
        "complete"
    }:
        time.sleep(10)
    first = _batch(settings, "001-020")
    # Re-crawl the first partition one link deep: it shows in progress, then complete.
    recrawl = {"ops": {"crawl_frontier": {"config": {"url_template": template, "recrawl": True, "depth": 1}}}}
    graphql(
        settings,
        BACKFILL,
        {
            "p": {
                "assetSelection": [{"path": ["crawl_frontier"]}],
                "partitionNames": ["001-020"],
                "runConfigData": recrawl,
            }
        },
    )
    _wait_for(settings, lambda: _batch(settings, "001-020") != first, what="a re-crawl batch", timeout_s=300)
    if _status(settings, "001-020") == "in progress":
        capture(settings, out, profile, [IN_PROGRESS_PAGE])
    else:
        print("the re-crawl completed before the sensor saw it running: no in-progress screenshot")
    _wait_for(
        settings, lambda: _status(settings, "001-020") == "complete", what="the re-crawl", timeout_s=900
    )
    time.sleep(90)  # let the DLQ sensor replay the poison and park it


def _latest(settings: Settings, partition: str) -> dict[str, str | None]:
    query = LATEST.replace("001-020", partition)
    mats = graphql(settings, query)["assetOrError"].get("assetMaterializations") or []
    return {e["label"]: e.get("text") for e in mats[0]["metadataEntries"]} if mats else {}


def _status(settings: Settings, partition: str) -> str | None:
    return _latest(settings, partition).get("status")


def _batch(settings: Settings, partition: str) -> str | None:
    return _latest(settings, partition).get("batch")


def _wait_for(settings: Settings, done: Callable[[], bool], *, what: str, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(2)


def capture(settings: Settings, out: Path, profile: Path, pages: list[tuple[str, str]] | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    runs = graphql(settings, LAST_REPLAY)["runsOrError"]["results"]
    last_replay = runs[0]["runId"] if runs else ""
    for name, page in pages if pages is not None else list(PAGES.items()):
        path = page.format(last_replay=last_replay)
        target = out / f"{name}.png"
        height = 2000 if name in TALL else 1000
        subprocess.run(
            [
                "/usr/bin/chromium",
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                f"--window-size=1600,{height}",
                "--virtual-time-budget=15000",
                f"--screenshot={target}",
                f"http://127.0.0.1:{settings.stack.dagster_port}{path}",
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )
        print(f"{target} ({target.stat().st_size // 1024} KB)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "img")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="streamcrawl-screens-"))
    os.chmod(base, 0o755)  # PostgreSQL runs as `postgres` when started by root
    settings = make_settings(base)
    stack = Stack(settings)
    demo = DemoWebServer(stack=settings.stack, paths=stack.paths)
    try:
        stack.up()
        demo.ensure_running()
        drive(settings, base, args.out, base / "chromium")
        capture(settings, args.out, base / "chromium")
    finally:
        demo.stop()
        stop_recorded(stack.paths)
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
