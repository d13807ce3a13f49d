"""The oldest unconsumed record's age, on the real broker: read back from record timestamps.

Records are produced with old timestamps (as a backlog would have them), a group commits
part of them, and the age of the first uncommitted record is measured — by the portable
reader the Dagster check uses, and by the worker's own Prometheus gauge.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from prometheus_client import REGISTRY

from crawl_assets.checks import retention_results, retention_risks
from crawl_assets.stages import FRONTIER_KEY
from tests.helpers.services import own_broker
from workers.kafka import make_consumer, make_producer
from workers.lag import oldest_unconsumed, retention_ms
from workers.lifecycle import Incoming, Worker
from workers.settings import KafkaSettings, MetricsSettings, Settings
from workers.topics import CRAWL_REQUEST, PROCESS_RICH, RAW_PAGE, STAGES, Stage

pytestmark = pytest.mark.integration

HOUR = 3600.0


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[KafkaSettings]:
    with own_broker(tmp_path / "kafka") as (_broker, kafka):
        yield kafka


async def _produce_aged(kafka: KafkaSettings, topic: str, partition: int, ages_h: Sequence[float]) -> None:
    producer = make_producer(kafka)
    await producer.start()
    try:
        now_ms = time.time() * 1000
        for age in ages_h:
            fut = await producer.send(
                topic, b"x", partition=partition, timestamp_ms=int(now_ms - age * HOUR * 1000)
            )
            await fut
    finally:
        await producer.stop()


async def _commit(kafka: KafkaSettings, group: str, positions: dict[TopicPartition, int]) -> None:
    consumer = make_consumer(kafka, group_id=group)
    await consumer.start()
    try:
        consumer.assign(list(positions))
        await consumer.commit(positions)
    finally:
        await consumer.stop()


async def test_age_of_the_first_uncommitted_record_and_the_retention_check(own_kafka: KafkaSettings) -> None:
    group = STAGES[Stage.INGESTOR].group
    await _produce_aged(own_kafka, CRAWL_REQUEST.name, 0, [100, 50, 1])
    await _produce_aged(own_kafka, CRAWL_REQUEST.name, 1, [2])
    await _produce_aged(own_kafka, CRAWL_REQUEST.name, 2, [3])  # never committed: its first record counts
    await _commit(
        own_kafka, group, {TopicPartition(CRAWL_REQUEST.name, 0): 1, TopicPartition(CRAWL_REQUEST.name, 1): 1}
    )

    oldest = await oldest_unconsumed(own_kafka, group, CRAWL_REQUEST)
    assert set(oldest.ages_s) == {0, 2}  # partition 1 is caught up
    assert abs(oldest.ages_s[0] - 50 * HOUR) < 60 and abs(oldest.ages_s[2] - 3 * HOUR) < 60
    assert (await retention_ms(own_kafka, [CRAWL_REQUEST, PROCESS_RICH])) == {
        CRAWL_REQUEST.name: 168 * 3_600_000,
        PROCESS_RICH.name: 72 * 3_600_000,
    }  # as the broker reports it

    # 50 h of 168 h is 30 %: fine at the default 50 %, at risk at 25 %.
    assert retention_results(await retention_risks(own_kafka, threshold=0.5))[FRONTIER_KEY][0] is True
    passed, meta = retention_results(await retention_risks(own_kafka, threshold=0.25))[FRONTIER_KEY]
    assert passed is False and meta["worst_group"] == group and meta["at_risk"] == f"{group} on crawl.request"
    assert abs(float(meta["oldest_unconsumed_s"]) - 50 * HOUR) < 60


class HoldingRouter(Worker):
    """Takes records and holds them (in flight, uncommitted) until released."""

    stage = Stage.ROUTER

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.release = asyncio.Event()
        self.seen = 0

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        self.seen += len(batch)
        await self.release.wait()


async def test_the_worker_exports_the_age_of_what_it_holds_uncommitted(own_kafka: KafkaSettings) -> None:
    await _produce_aged(own_kafka, RAW_PAGE.name, 4, [2, 1])
    worker = HoldingRouter(Settings(kafka=own_kafka, metrics=MetricsSettings(enabled=False)))
    labels = {"group": STAGES[Stage.ROUTER].group, "topic": RAW_PAGE.name}
    task = asyncio.create_task(worker.run())
    try:
        deadline = time.monotonic() + 60
        value = None
        while time.monotonic() < deadline:
            value = REGISTRY.get_sample_value("streamcrawl_oldest_unconsumed_age_seconds", labels)
            if worker.seen and value and value > HOUR:
                break
            await asyncio.sleep(0.5)
        assert value is not None and abs(value - 2 * HOUR) < 60, value
        retention = REGISTRY.get_sample_value("streamcrawl_topic_retention_seconds", {"topic": RAW_PAGE.name})
        assert retention == 24 * HOUR
    finally:
        worker.release.set()
        await worker.stop()
        await task
