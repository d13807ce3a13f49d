"""Failure drills on real services: a crawl of the demo web while something breaks.

``DrillServices`` owns an S3 (SeaweedFS) and a PostgreSQL that the drills may stop and
start; each drill gets a ``Drill`` of its own — a fresh database, a fresh page bucket and
a fresh broker whose log lives in S3 (as in the embedded stack, so a broker restart keeps
its records, and an S3 outage hits the broker too) — and runs the hot-path daemons under
``Pipeline.supervise`` (restarted whenever they exit, as supervisord does).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

from tests.helpers.accounting import create_database
from tests.helpers.ledger import crawl_batch
from tests.helpers.pipeline import HOT_PATH, Pipeline
from tests.helpers.services import start_kafka, start_postgres, start_s3
from workers.demoweb import DemoURL, DemoWeb, demo_urls
from workers.ledger import BatchProgress
from workers.settings import IngestorSettings, PostgresSettings, S3Settings, Settings
from workers.stack.broker import TansuBroker
from workers.stack.postgres import EmbeddedPostgres
from workers.stack.seaweed import SeaweedFS, s3_client

__all__ = [
    "DEMO_CRAWL_ENV",
    "DRILL_ENV",
    "Drill",
    "DrillServices",
    "drill_urls",
    "rows_of",
    "start_crawl",
    "wait_for",
    "wait_rows",
]

# Short fetch timeouts keep the demo's slow pages short (the demo web resolves to loopback).
DEMO_CRAWL_ENV = {
    "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": '{"*.demo.test": "127.0.0.1"}',
    "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "true",
    "STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S": "3",
    "STREAMCRAWL_INGESTOR_READ_TIMEOUT_S": "2",
    "STREAMCRAWL_INGESTOR_MAX_RETRIES": "1",
    "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0.05",
    "STREAMCRAWL_INGESTOR_CRAWL_DELAY_CAP_S": "0.2",
    "STREAMCRAWL_INGESTOR_RETRY_AFTER_CAP_S": "2",
}
# ...and short liveness bounds make a wedged daemon exit (and be restarted) within a drill
# instead of after five minutes.
DRILL_ENV = {
    **DEMO_CRAWL_ENV,
    "STREAMCRAWL_WORKER_STALL_EXIT_S": "15",
    "STREAMCRAWL_WORKER_NO_PARTITIONS_EXIT_S": "15",
    "STREAMCRAWL_WORKER_RETRY_MAX_DELAY_S": "3",
}


def drill_urls(web: DemoWeb, *, hosts: int = 8, per_host: int = 10, seed: int = 7) -> list[DemoURL]:
    # JavaScript-only pages go to the rich renderer, which the drills do not run.
    return demo_urls(
        port=web.port, hosts=hosts, per_host=per_host, seed=seed, exclude_kinds={"spa"}, timeout_delay_s=6
    )


def start_crawl(
    settings: Settings, urls: list[DemoURL], *, batch: str, timeout_s: float = 240
) -> asyncio.Task[BatchProgress]:
    """Publish ``urls`` as ``batch`` and follow it until every URL is accounted for (a task)."""
    return asyncio.create_task(crawl_batch(settings, [u.url for u in urls], batch, timeout_s=timeout_s))


async def rows_of(settings: Settings, batch: str | None = None) -> int:
    """Stored pages (of ``batch``); -1 while PostgreSQL is unreachable."""
    try:
        conn = await asyncpg.connect(settings.postgres.dsn(), timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return -1  # PostgreSQL is down (a drill's doing)
    try:
        if batch is None:
            return int(await conn.fetchval("SELECT count(*) FROM pages"))
        return int(await conn.fetchval("SELECT count(*) FROM pages WHERE batch = $1", batch))
    except asyncpg.UndefinedTableError:
        return 0  # the writer has not migrated yet
    finally:
        await conn.close()


async def wait_rows(
    settings: Settings, at_least: int, *, batch: str | None = None, timeout_s: float = 120
) -> int:
    """Wait until at least ``at_least`` pages (of ``batch``) are stored; returns the count."""
    found = 0

    async def enough() -> bool:
        nonlocal found
        found = await rows_of(settings, batch)
        return found >= at_least

    await wait_for(enough, timeout_s=timeout_s, what=f"{at_least} stored pages")
    return found


async def wait_for(predicate: Callable[[], Awaitable[bool]], *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


@dataclass
class DrillServices:
    base: Path
    s3: SeaweedFS
    s3_settings: S3Settings
    postgres: EmbeddedPostgres
    pg_settings: PostgresSettings
    drills: int = 0

    @classmethod
    def start(cls, base: Path) -> DrillServices:
        s3, s3_settings = start_s3(base / "s3")
        try:
            postgres, pg = start_postgres(base / "postgres")
        except BaseException:
            s3.stop()
            raise
        return cls(base=base, s3=s3, s3_settings=s3_settings, postgres=postgres, pg_settings=pg)

    def stop(self) -> None:
        try:
            self.postgres.stop()
        finally:
            self.s3.stop()

    async def drill(self, name: str) -> Drill:
        self.drills += 1
        tag = f"{name}-{self.drills}-{secrets.token_hex(3)}"
        s3 = self.s3_settings.model_copy(
            update={"bucket": f"drill-{tag}", "broker_bucket": f"drill-log-{tag}"}
        )
        await asyncio.to_thread(s3_client(s3).make_bucket, s3.broker_bucket)
        pg = await create_database(self.pg_settings, f"drill_{tag.replace('-', '_')}")
        broker, kafka, _ = await asyncio.to_thread(start_kafka, self.base / f"kafka-{tag}", s3=s3)
        settings = Settings(
            kafka=kafka, postgres=pg, s3=s3, ingestor=IngestorSettings(allow_private_networks=True)
        )
        return Drill(services=self, name=tag, settings=settings, broker=broker)


@dataclass
class Drill:
    services: DrillServices
    name: str
    settings: Settings
    broker: TansuBroker
    pipeline: Pipeline | None = None
    notes: list[str] = field(default_factory=list)

    def start_pipeline(self, log_dir: Path) -> Pipeline:
        self.pipeline = Pipeline(self.settings, log_dir=log_dir, extra_env=DRILL_ENV)
        self.pipeline.supervise(*HOT_PATH)
        return self.pipeline

    @property
    def batch(self) -> str:
        return f"drill-{self.name}"

    def crawl(self, urls: list[DemoURL], *, timeout_s: float = 240) -> asyncio.Task[BatchProgress]:
        return start_crawl(self.settings, urls, batch=self.batch, timeout_s=timeout_s)

    async def wait_rows(self, at_least: int, *, timeout_s: float = 120) -> int:
        return await wait_rows(self.settings, at_least, timeout_s=timeout_s)

    def logs(self) -> dict[str, str]:
        assert self.pipeline is not None
        return {stage: self.pipeline.logs(stage, tail=30) for stage in HOT_PATH}

    def close(self) -> None:
        try:
            if self.pipeline is not None:
                self.pipeline.stop()
        finally:
            self.broker.stop()
