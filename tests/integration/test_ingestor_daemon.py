"""The ingestor daemon on the real broker: re-queues with a delay, waits for not_before
without holding up other hosts, pauses (never dead-letters) a failing host, routes
robots/sitemap requests to raw.sitemap.

The worker runs in-process with a consumer group of its own, positioned at the log end
before it starts, so it sees only this test's records; outputs are read from the offsets
seen before the test and filtered by batch.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from aiohttp import web
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import REGISTRY

from tests.helpers.kafka import read_all
from tests.helpers.web import serve
from workers.ingestor.daemon import Ingestor
from workers.kafka import make_consumer, make_producer
from workers.lag import high_watermarks
from workers.messages import CrawlRequest, DeadLetter, Message, RawPage, decode, encode, make_headers
from workers.settings import IngestorSettings, KafkaSettings, MetricsSettings, Settings, WorkerSettings
from workers.topics import CRAWL_REQUEST, RAW_PAGE, RAW_PAGE_DLQ, RAW_SITEMAP, Topic
from workers.urls import host_of, url_hash

pytestmark = pytest.mark.integration
HTML = b"<!doctype html><html><body><p>page</p></body></html>"


class Site:
    def __init__(self) -> None:
        self.port = 0
        self.hits: Counter[str] = Counter()
        self.failures: dict[str, int] = {}  # host -> 503s left
        self.times: dict[str, list[float]] = {}

    def url(self, host: str, path: str) -> str:
        return f"http://{host}.demo.test:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.Response:
        host = request.host.split(".", 1)[0]
        self.hits[f"{host}{request.path}"] += 1
        self.times.setdefault(host, []).append(time.time())
        if request.path == "/robots.txt":
            body = "User-agent: *\nDisallow: /private\nSitemap: /sitemap.xml\n"
            return web.Response(text=body)
        if request.path == "/sitemap.xml":
            return web.Response(body=b"<urlset></urlset>", content_type="application/xml")
        if request.path == "/always-500":
            return web.Response(status=500)
        left = self.failures.get(host, 0)
        if left > 0:
            self.failures[host] = left - 1
            return web.Response(status=503)
        return web.Response(body=HTML, content_type="text/html")


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    state = Site()
    async with serve(state.handle) as state.port:
        yield state


async def _offsets(kafka: KafkaSettings, topic: Topic) -> dict[int, int]:
    return (await high_watermarks(kafka, [topic])).get(topic.name, {})


class Run:
    """An in-process ingestor with a fresh consumer group, and readers of what it produced."""

    def __init__(
        self, kafka: KafkaSettings, *, worker: WorkerSettings | None = None, **ingestor: Any
    ) -> None:
        options: dict[str, Any] = {
            "allow_private_networks": True,
            "resolve_overrides": {"*.demo.test": "127.0.0.1"},
            "per_host_delay_s": 0.0,
            "requeue_base_delay_s": 0.2,
            "total_timeout_s": 5.0,
            **ingestor,
        }
        self.settings = Settings(
            kafka=kafka,
            metrics=MetricsSettings(enabled=False),
            ingestor=IngestorSettings(**options),
            worker=worker or WorkerSettings(),
        )
        self.kafka = kafka
        self.batch = uuid.uuid4().hex[:12]
        self.worker = Ingestor(self.settings)
        self.worker.topics = dataclasses.replace(self.worker.topics, group=f"test.ingestor.{self.batch}")
        self.start: dict[str, dict[int, int]] = {}
        self.task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Run:
        for topic in (CRAWL_REQUEST, RAW_PAGE, RAW_SITEMAP, RAW_PAGE_DLQ):
            self.start[topic.name] = await _offsets(self.kafka, topic)
        consumer = make_consumer(self.kafka, group_id=self.worker.topics.group)
        await consumer.start()
        try:
            ends = self.start[CRAWL_REQUEST.name]
            consumer.assign([TopicPartition(CRAWL_REQUEST.name, p) for p in ends])
            await consumer.commit(
                {TopicPartition(CRAWL_REQUEST.name, p): OffsetAndMetadata(o, "") for p, o in ends.items()}
            )
        finally:
            await consumer.stop()
        self.task = asyncio.create_task(self.worker.run())
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.worker.stop()
        assert self.task is not None
        await asyncio.wait_for(self.task, 30)

    def request(self, url: str, **fields: Any) -> CrawlRequest:
        return CrawlRequest(
            url=url,
            url_hash=url_hash(url),
            host=host_of(url),
            requested_at=time.time(),
            batch=self.batch,
            **fields,
        )

    async def publish(self, requests: list[CrawlRequest], *, partition: int | None = None) -> None:
        producer = make_producer(self.kafka)
        await producer.start()
        try:
            for r in requests:
                await (
                    await producer.send(
                        CRAWL_REQUEST.name,
                        encode(r),
                        key=r.host.encode(),
                        partition=partition,
                        headers=make_headers(uuid.uuid4().hex),
                    )
                )
        finally:
            await producer.stop()

    async def read(self, topic: Topic, cls: type[Message]) -> list[Any]:
        """Every record of ``topic`` of this batch produced since the run began."""
        records = await read_all(self.kafka, [topic], since={topic.name: self.start[topic.name]})
        messages = [decode(r.value, cls) for r in records]
        return [m for m in messages if getattr(m, "batch", None) == self.batch]

    async def wait_for(
        self, topic: Topic, cls: type[Message], done: Callable[[list[Any]], bool], within: float = 30.0
    ) -> list[Any]:
        deadline = time.monotonic() + within
        while True:
            found = await self.read(topic, cls)
            if done(found) or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.2)


async def test_transient_failures_are_requeued_with_growing_delays_then_fetched(
    kafka_service: KafkaSettings, site: Site
) -> None:
    site.failures["flaky"] = 2
    async with Run(kafka_service, max_requeues=3) as run:
        await run.publish([run.request(site.url("flaky", "/page"))])
        pages = await run.wait_for(RAW_PAGE, RawPage, lambda p: len(p) >= 1)
        requeued = await run.read(CRAWL_REQUEST, CrawlRequest)
    assert [p.status for p in pages] == [200]
    assert [r.requeues for r in requeued] == [0, 1, 2]  # the original and two re-queued copies
    assert requeued[1].not_before < requeued[2].not_before
    times = site.times["flaky"][1:]  # after robots.txt
    assert site.hits["flaky/page"] == 3 and times[2] >= requeued[2].not_before - 0.05
    assert await run.read(RAW_PAGE_DLQ, DeadLetter) == []


async def test_requeues_are_bounded_then_dead_lettered(kafka_service: KafkaSettings, site: Site) -> None:
    async with Run(kafka_service, max_requeues=2) as run:
        await run.publish([run.request(site.url("dead", "/always-500"))])
        letters = await run.wait_for(RAW_PAGE_DLQ, DeadLetter, lambda found: len(found) >= 1)
    assert len(letters) == 1 and letters[0].error_class == "TransientFetchError"
    assert letters[0].error_message.startswith("gave up after 3 tries (2 requeues): HTTP 500")
    assert site.hits["dead/always-500"] == 3


async def test_a_waiting_request_does_not_hold_up_the_partitions_other_hosts(
    kafka_service: KafkaSettings, site: Site
) -> None:
    async with Run(kafka_service) as run:
        later = time.time() + 3.0
        waiting = [run.request(site.url("wait", f"/p{i}"), not_before=later) for i in range(50)]
        now = run.request(site.url("nowait", "/page"))
        await run.publish([*waiting, now], partition=0)  # one partition: behind 50 waiting requests
        published = time.time()
        first = await run.wait_for(RAW_PAGE, RawPage, lambda p: len(p) >= 1)
        assert [p.url for p in first] == [now.url] and first[0].fetched_at - published < 2.5
        pages = await run.wait_for(RAW_PAGE, RawPage, lambda p: len(p) >= 51)
    assert len(pages) == 51 and min(p.fetched_at for p in pages if p.url != now.url) >= later


async def test_a_request_due_later_than_the_longest_hold_is_put_back_unchanged(
    kafka_service: KafkaSettings, site: Site
) -> None:
    # stall_exit_s=3 makes the longest hold 1 s: a request due in 3.5 s is put back unchanged
    # (the worker keeps finishing records) and fetched once it is due.
    async with Run(kafka_service, worker=WorkerSettings(stall_exit_s=3.0)) as run:
        due = time.time() + 3.5
        await run.publish([run.request(site.url("later", "/page"), not_before=due)])
        pages = await run.wait_for(RAW_PAGE, RawPage, lambda p: len(p) >= 1)
        copies = await run.read(CRAWL_REQUEST, CrawlRequest)
    assert [p.status for p in pages] == [200] and pages[0].fetched_at >= due
    assert len(copies) >= 3 and {(r.not_before, r.requeues) for r in copies} == {(due, 0)}
    assert site.hits["later/page"] == 1


async def test_a_tripped_host_is_paused_and_the_next_batch_is_not_dead_lettered(
    kafka_service: KafkaSettings, site: Site
) -> None:
    site.failures["pause"] = 3
    async with Run(kafka_service, breaker_failures=2, breaker_pause_s=1.0, max_requeues=4) as run:
        await run.publish([run.request(site.url("pause", f"/one/{i}")) for i in range(4)])
        started = time.time()
        await run.wait_for(CRAWL_REQUEST, CrawlRequest, lambda r: any(x.requeues for x in r), within=10)
        # The breaker tripped; the next batch of the same host arrives right away.
        await run.publish([run.request(site.url("pause", f"/two/{i}")) for i in range(4)])
        while time.time() - started < 1.0:
            assert await run.read(RAW_PAGE_DLQ, DeadLetter) == []
            await asyncio.sleep(0.1)
        pages = await run.wait_for(RAW_PAGE, RawPage, lambda p: len(p) >= 8)
        letters = await run.read(RAW_PAGE_DLQ, DeadLetter)
    assert letters == [] and sorted(p.status for p in pages) == [200] * 8
    assert len({p.url for p in pages}) == 8


async def test_waiting_out_a_pause_spends_no_requeues(kafka_service: KafkaSettings, site: Site) -> None:
    # Paused requests wake every 0.3 s through a 1.5 s pause: several re-queues each, with a
    # budget of one. They are paused, not failing, so none is dead-lettered.
    site.failures["hold"] = 1
    options = {"breaker_failures": 1, "breaker_pause_s": 1.5, "requeue_max_delay_s": 0.3}
    async with Run(kafka_service, max_requeues=1, per_host_concurrency=1, **options) as run:
        await run.publish([run.request(site.url("hold", f"/{name}")) for name in ("a", "b")])
        pages = await run.wait_for(RAW_PAGE, RawPage, lambda p: len(p) >= 2)
        requeued = [r for r in await run.read(CRAWL_REQUEST, CrawlRequest) if r.not_before]
        letters = await run.read(RAW_PAGE_DLQ, DeadLetter)
    assert letters == [] and sorted(p.status for p in pages) == [200, 200]
    assert len(requeued) >= 4 and max(r.requeues for r in requeued) == 1  # only the 503 spent one


async def test_robots_and_sitemap_requests_go_to_raw_sitemap_and_disallow_is_a_skip(
    kafka_service: KafkaSettings, site: Site
) -> None:
    async with Run(kafka_service) as run:
        await run.publish(
            [
                run.request(site.url("kinds", "/"), kind="robots"),
                run.request(site.url("kinds", "/sitemap.xml"), kind="sitemap"),
                run.request(site.url("kinds", "/private/x")),
            ]
        )
        found = await run.wait_for(RAW_SITEMAP, RawPage, lambda p: len(p) >= 2)
        skipped = await run.wait_for(RAW_PAGE, RawPage, lambda p: len(p) >= 1)
    assert sorted(p.kind for p in found) == ["robots", "sitemap"]
    robots = next(p for p in found if p.kind == "robots")
    assert b"Sitemap: /sitemap.xml" in robots.html_bytes()
    assert [(p.skipped, p.status) for p in skipped] == [("robots", 0)]
    assert await run.read(RAW_PAGE_DLQ, DeadLetter) == []


async def test_shutdown_does_not_wait_for_sleeping_requests(kafka_service: KafkaSettings, site: Site) -> None:
    run = Run(kafka_service)
    async with run:
        await run.publish([run.request(site.url("sleepy", "/page"), not_before=time.time() + 120)])
        for _ in range(400):  # until the worker holds it, asleep (20 s at most)
            if REGISTRY.get_sample_value("ingestor_waiting_requests"):
                break
            await asyncio.sleep(0.05)
        assert REGISTRY.get_sample_value("ingestor_waiting_requests") == 1
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 5.0
    assert site.hits["sleepy/page"] == 0
