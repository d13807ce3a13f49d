"""A URL is fetched once per request: through a stalled broker, and through a rebalance.

A local server counts every GET. The real ingestor (a subprocess, as under supervisord)
crawls it while the broker is frozen mid-crawl (produces time out and are sent again),
or while a second ingestor joins the group (revocation waits for in-flight fetches).
Each test has a broker of its own.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.helpers.countingweb import CountingWeb
from tests.helpers.kafka import read_all
from tests.helpers.pipeline import Pipeline
from tests.helpers.services import own_broker as own_broker_of
from workers.frontier import build_request, publish_requests
from workers.messages import peek
from workers.settings import KafkaSettings, Settings
from workers.stack.broker import TansuBroker
from workers.topics import RAW_PAGE, RAW_PAGE_DLQ

pytestmark = pytest.mark.integration

INGESTOR_ENV = {
    "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": '{"*.count.test": "127.0.0.1"}',
    "STREAMCRAWL_INGESTOR_ALLOWED_NETWORKS": '["127.0.0.1/32"]',
    "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0.05",
    "STREAMCRAWL_INGESTOR_PER_HOST_CONCURRENCY": "1",
}


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[TansuBroker, KafkaSettings]]:
    with own_broker_of(tmp_path / "kafka") as found:
        yield found


@pytest.fixture
async def web() -> AsyncIterator[CountingWeb]:
    server = CountingWeb(delay_s=0.25)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


async def _publish(kafka: KafkaSettings, web: CountingWeb, *, hosts: int, per_host: int) -> list[str]:
    urls = [web.url(f"h{h}.count.test", f"/p/{h}-{i}") for h in range(hosts) for i in range(per_host)]
    await publish_requests(kafka, [build_request(u, batch="fetch-once") for u in urls])
    return urls


async def _until(predicate: object, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        result = predicate()  # type: ignore[operator]
        if await result if asyncio.iscoroutine(result) else result:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def _fetched_urls(kafka: KafkaSettings) -> set[str]:
    return {str(peek(r.value).get("url")) for r in await read_all(kafka, [RAW_PAGE])}


async def _has_all(kafka: KafkaSettings, urls: list[str]) -> bool:
    return set(urls) <= await _fetched_urls(kafka)


async def _assert_each_fetched_once(
    kafka: KafkaSettings, web: CountingWeb, urls: list[str], logs: str
) -> None:
    fetched = await _fetched_urls(kafka)
    letters = await read_all(kafka, [RAW_PAGE_DLQ])
    assert set(urls) <= fetched and not letters, (len(set(urls) - fetched), len(letters), logs)
    gets = web.page_gets()
    assert len(gets) == len(urls), logs
    repeated = {path: n for path, n in gets.items() if n != 1}
    assert not repeated, (repeated, logs)


async def test_a_stalled_broker_makes_the_ingestor_resend_not_refetch(
    own_broker: tuple[TansuBroker, KafkaSettings], web: CountingWeb, tmp_path: Path
) -> None:
    broker, kafka = own_broker
    # Produces time out after 2 s; the broker is frozen for 6 s while fetches complete.
    kafka = kafka.model_copy(update={"request_timeout_ms": 2000})
    pipeline = Pipeline(Settings(kafka=kafka), log_dir=tmp_path / "logs", extra_env=INGESTOR_ENV)
    pipeline.start("ingestor")
    try:
        urls = await _publish(kafka, web, hosts=16, per_host=10)
        await _until(lambda: len(web.page_gets()) >= 30, timeout_s=60, what="the crawl to start")
        pid = broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        try:
            await _until(
                lambda: len(web.page_gets()) >= len(urls), timeout_s=30, what="fetches during the stall"
            )
            await asyncio.sleep(4.0)  # keep it frozen past the produce timeout (the point of the test)
        finally:
            os.kill(pid, signal.SIGCONT)
        await _until(lambda: _has_all(kafka, urls), timeout_s=90, what="every page in raw.page")
    finally:
        pipeline.stop()
    logs = pipeline.logs("ingestor", tail=400)
    assert "not acknowledged" in logs, logs  # the produces really failed and were sent again
    await _assert_each_fetched_once(kafka, web, urls, logs)


async def test_a_consumer_joining_mid_crawl_fetches_nothing_twice(
    own_broker: tuple[TansuBroker, KafkaSettings], web: CountingWeb, tmp_path: Path
) -> None:
    _broker, kafka = own_broker
    # The bound on the wait covers what the first ingestor has in flight when the second joins
    # (each of 24 hosts has at most 20 pages of 0.25 s left), below the 30 s rebalance timeout.
    env = {**INGESTOR_ENV, "STREAMCRAWL_WORKER_REVOKE_WAIT_S": "25"}
    pipeline = Pipeline(Settings(kafka=kafka), log_dir=tmp_path / "logs", extra_env=env)
    pipeline.start("ingestor")
    try:
        urls = await _publish(kafka, web, hosts=24, per_host=20)
        await _until(lambda: len(web.page_gets()) >= 20, timeout_s=60, what="the crawl to start")
        assert len(web.page_gets()) < len(urls), "the join must land mid-crawl"
        pipeline.start("ingestor#2")  # a second consumer of the group: every partition is revoked
        await _until(lambda: _has_all(kafka, urls), timeout_s=90, what="every page in raw.page")
    finally:
        pipeline.stop()
    first = pipeline.logs("ingestor", tail=300)
    logs = first + "\n--- second ---\n" + pipeline.logs("ingestor#2", tail=100)
    # The join rebalanced the group mid-crawl: the first ingestor gave up half its partitions.
    assert "assigned 12 partitions" in first and "assigned 6 partitions" in first, logs
    assert "still in flight after" not in logs, logs  # the wait covered every in-flight fetch
    await _assert_each_fetched_once(kafka, web, urls, logs)
