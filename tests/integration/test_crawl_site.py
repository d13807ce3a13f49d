"""A whole demo site crawled at depth 3 in domain scope, checked from the server's own access log.

Issue 8's done-when: the crawl stores what the demo web's oracle says a correct crawl stores,
no URL is fetched twice in the batch, the calendar trap stops at the per-host budget, and
nofollow / noindex / robots.txt are obeyed. Then the same crawl with the discovery daemon and
the storage writer each SIGKILLed mid-crawl: nothing is lost, and a URL is published twice only
within the bound the discovery daemon states (it died between the broker's acknowledgement of
its produce and the ``published`` mark right after), which this test checks from the record
timestamps of ``crawl.request``.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from aiokafka import TopicPartition

from tests.helpers.ledger import ledger_states
from tests.helpers.pipeline import HOT_PATH, Pipeline
from tests.integration.test_pipeline_e2e import TIMEOUT_ENV
from workers.cli import cmd_demo
from workers.demoweb import DemoWeb, DemoWebConfig
from workers.demoweb.accesslog import fetch_counts, wait_for_records
from workers.demoweb.hosts import demo_host
from workers.demoweb.oracle import Expectation, expect_crawl
from workers.demoweb.report import demo_report
from workers.kafka import make_consumer
from workers.ledger import read_progress
from workers.messages import CrawlRequest, Scope, decode
from workers.settings import Settings
from workers.topics import CRAWL_REQUEST
from workers.urls import host_of

pytestmark = pytest.mark.integration

ENV = {**TIMEOUT_ENV, "STREAMCRAWL_DISCOVERY_EXTRA_SUFFIXES": '["demo.test"]'}
SCOPE = Scope(mode="domain", max_depth=3, max_pages_per_host=200)
RETRIED_KINDS = frozenset(
    {"flaky", "throttled", "throttled_always", "timeout", "stall", "server_error"}
    | {"redirect", "redirect_too_many", "redirect_loop"}
)
"""Kinds a correct crawler requests more than once (retries, redirect hops)."""
REPUBLISH_WINDOW_S = 10.0
"""How long before a discovery kill a URL's first publication may be and still be published
again: the daemon's in-flight input batch (produce, acknowledgement, mark)."""


@dataclass
class SiteCrawl:
    expectation: Expectation
    fetches: Counter[str]
    """Canonical URL -> GETs by StreamCrawl's User-Agent (robots.txt left out)."""
    states: dict[str, asyncpg.Record]
    dropped: dict[str, int]
    publications: dict[str, list[float]]
    """url_hash -> the timestamps of every crawl.request record of the batch for it."""
    kills: dict[str, float]


async def _stored(settings: Settings, batch: str) -> int:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        return int(
            await conn.fetchval(
                "SELECT count(*) FROM crawl_urls WHERE batch = $1 AND state = 'stored'", batch
            )
            or 0
        )
    except asyncpg.UndefinedTableError:
        return 0
    finally:
        await conn.close()


async def _dropped(settings: Settings, batch: str) -> dict[str, int]:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        ledger = await read_progress(conn, batch)
    finally:
        await conn.close()
    assert ledger is not None
    return dict(ledger.dropped_by_reason)


async def _publications(settings: Settings, batch: str) -> dict[str, list[float]]:
    """Every crawl.request record of ``batch`` by url_hash, read back from the broker."""
    consumer = make_consumer(settings.kafka, group_id=None)
    await consumer.start()
    try:
        partitions = [
            TopicPartition(CRAWL_REQUEST.name, p)
            for p in consumer.partitions_for_topic(CRAWL_REQUEST.name) or ()
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        end = await consumer.end_offsets(partitions)
        out: dict[str, list[float]] = {}

        async def behind() -> bool:
            return any([await consumer.position(tp) < end[tp] for tp in partitions])

        while await behind():
            for records in (await consumer.getmany(timeout_ms=1000)).values():
                for record in records:
                    request = decode(record.value or b"", CrawlRequest)
                    if request.batch == batch:
                        out.setdefault(request.url_hash, []).append(record.timestamp / 1000)
        return out
    finally:
        await consumer.stop()


async def _crawl_site(
    settings: Settings, tmp_path: Path, *, kill: tuple[tuple[str, int], ...] = ()
) -> SiteCrawl:
    config = DemoWebConfig(access_log_dir=tmp_path / "access", slow_delay_s=0.2)
    async with DemoWeb(port=0, config=config) as web:
        home = f"{web.base_url(demo_host(1))}/"
        expectation = expect_crawl([home], SCOPE, config=config, fetch_timeout_s=3)
        pipeline = Pipeline(settings, log_dir=tmp_path / "logs", extra_env=ENV)
        pipeline.start(*HOT_PATH)
        batch = f"site-{time.time_ns()}"
        started = time.time()
        kills: dict[str, float] = {}
        task = asyncio.create_task(
            cmd_demo.publish_and_wait(
                settings, [home], scope=SCOPE, batch=batch, sitemaps=False, timeout_s=300
            )
        )
        try:
            for stage, at_stored in kill:
                deadline = time.monotonic() + 120
                while not task.done() and time.monotonic() < deadline:
                    if await _stored(settings, batch) >= at_stored:
                        break
                    await asyncio.sleep(0.1)
                assert not task.done(), f"the crawl ended before {stage} could be killed"
                kills[stage] = time.time()
                pipeline.kill(stage)
                await asyncio.sleep(0.3)
                pipeline.start(stage)
            progress, stored = await task
        finally:
            pipeline.stop()
        logs = {stage: pipeline.logs(stage)[-3000:] for stage in HOT_PATH}
        report = demo_report(expectation, stored, progress, batch=batch)
        assert report.ok, (report.explain(), logs)
        assert report.lost == 0 and report.unexpected == 0
        records = await wait_for_records(
            config.access_log_dir or tmp_path, at_least=len(stored), since=started
        )
    fetches = fetch_counts(records, user_agent=settings.ingestor.user_agent.split("/")[0])
    return SiteCrawl(
        expectation=expectation,
        fetches=Counter({u: n for u, n in fetches.items() if not u.endswith("/robots.txt")}),
        states=await ledger_states(settings, batch),
        dropped=await _dropped(settings, batch),
        publications=await _publications(settings, batch),
        kills=kills,
    )


def _fetched_twice(crawl: SiteCrawl) -> set[str]:
    kinds = {u: e.kind for u, e in crawl.expectation.urls.items()}
    return {
        u
        for u, n in crawl.fetches.items()
        if n > 1 and kinds.get(u) not in RETRIED_KINDS and "/redirect" not in u
    }


def _check_rules(crawl: SiteCrawl) -> None:
    expectation = crawl.expectation
    # The calendar trap is endless: only the per-host budget stops it.
    per_host = Counter(host_of(u) for u in crawl.fetches)
    assert per_host and max(per_host.values()) <= (SCOPE.max_pages_per_host or 0), per_host
    assert any("/calendar/" in u for u in crawl.fetches)
    assert crawl.dropped.get("budget_host", 0) > 0, crawl.dropped
    # nofollow'd links, out-of-scope hosts and robots-disallowed paths are never fetched.
    assert not set(crawl.fetches) & expectation.never_fetched()
    reasons = Counter(r["reason"] for r in crawl.states.values() if r["state"] == "skipped")
    assert reasons["noindex"] >= 1 and reasons["robots"] >= 1, reasons
    assert all(r["state"] != "stored" for r in crawl.states.values() if r["reason"] in ("noindex", "robots"))


async def test_a_site_at_depth_3_is_fetched_once_per_url_within_its_budget(
    settings: Settings, tmp_path: Path
) -> None:
    crawl = await _crawl_site(settings, tmp_path)
    _check_rules(crawl)
    assert _fetched_twice(crawl) == set()
    assert all(len(ts) == 1 for ts in crawl.publications.values())


async def test_discovery_and_storage_writer_sigkilled_mid_crawl_lose_nothing(
    settings: Settings, tmp_path: Path
) -> None:
    crawl = await _crawl_site(settings, tmp_path, kill=(("discovery", 25), ("storage_writer", 70)))
    _check_rules(crawl)
    twice = _fetched_twice(crawl)
    republished = {h for h, ts in crawl.publications.items() if len(ts) > 1}
    killed_at = crawl.kills["discovery"]
    # The stated bound: a second publication only for URLs first published just before the
    # discovery daemon died; a second fetch only for a URL published twice.
    for h in republished:
        first = min(crawl.publications[h])
        assert killed_at - REPUBLISH_WINDOW_S <= first <= killed_at, (h, first, killed_at)
    by_hash = {e.url: e.url_hash for e in crawl.expectation.urls.values()}
    assert {by_hash.get(u) for u in twice} <= republished, (twice, republished)
