"""The lag exporter on a real broker: lag per group and partition, and the backlog's age.

A fresh Tansu broker (so no other test's groups interfere): records with known timestamps
go to one partition of ``crawl.request``, the ingestor's group commits part of them, and the
exporter must report exactly the uncommitted count as lag, the age of the first uncommitted
record as lag seconds, the registry's retention, and serve all of it as one Prometheus
snapshot.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from prometheus_client import CollectorRegistry, generate_latest

from tests.helpers.services import start_kafka
from workers.kafka import make_consumer, make_producer
from workers.observability.lag_exporter import SnapshotCollector, read_snapshot
from workers.settings import KafkaSettings
from workers.topics import CRAWL_REQUEST, STAGES, Stage

pytestmark = pytest.mark.integration


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[KafkaSettings]:
    component, kafka, _ = start_kafka(tmp_path / "kafka")
    try:
        yield kafka
    finally:
        component.stop()


async def _produce_aged(kafka: KafkaSettings, partition: int, ages_s: list[float]) -> None:
    producer = make_producer(kafka, client_id="lag-exporter-test")
    await producer.start()
    try:
        now_ms = int(time.time() * 1000)
        for age in ages_s:
            fut = await producer.send(
                CRAWL_REQUEST.name, b"x", partition=partition, timestamp_ms=now_ms - int(age * 1000)
            )
            await fut
    finally:
        await producer.stop()


async def _commit(kafka: KafkaSettings, group: str, partition: int, offset: int) -> None:
    consumer = make_consumer(kafka, group_id=group, client_id="lag-exporter-test-commit")
    await consumer.start()
    try:
        tp = TopicPartition(CRAWL_REQUEST.name, partition)
        consumer.assign([tp])
        await consumer.commit({tp: OffsetAndMetadata(offset, "")})
    finally:
        await consumer.stop()


async def test_lag_and_backlog_age_per_group_and_partition(broker: KafkaSettings) -> None:
    group = STAGES[Stage.INGESTOR].group
    await _produce_aged(broker, 3, [300, 200, 100, 50, 10])
    await _produce_aged(broker, 5, [40, 20])  # never committed: the whole log lags
    await _commit(broker, group, 3, 2)  # offsets 0, 1 done; 2 (100 s old) is the oldest unconsumed

    snapshot = await read_snapshot(broker, timeout_s=5)
    assert snapshot.high_watermarks[CRAWL_REQUEST.name][3] == 5
    readings = {(r.group, r.topic, r.partition): r for r in snapshot.groups}
    reading = readings[group, CRAWL_REQUEST.name, 3]
    assert (reading.committed, reading.high_watermark, reading.lag) == (2, 5, 3)
    assert 95 <= snapshot.lag_seconds(reading) <= 130
    # A partition nothing was written to does not lag; one never committed lags by its whole log.
    assert readings[group, CRAWL_REQUEST.name, 0].lag == 0
    uncommitted = readings[group, CRAWL_REQUEST.name, 5]
    assert (uncommitted.committed, uncommitted.lag) == (None, 2)
    assert 35 <= snapshot.lag_seconds(uncommitted) <= 70
    # Every stage's group is read, on its input topic.
    assert {r.group for r in snapshot.groups} == {spec.group for spec in STAGES.values()}

    collector = SnapshotCollector()
    collector.snapshot = snapshot
    registry = CollectorRegistry()
    registry.register(collector)
    text = generate_latest(registry).decode()
    labels = f'group="{group}",partition="3",stage="ingestor",topic="crawl.request"'
    assert f"streamcrawl_kafka_group_lag{{{labels}}} 3.0" in text
    assert f"streamcrawl_kafka_group_committed_offset{{{labels}}} 2.0" in text
    retention = CRAWL_REQUEST.retention_hours * 3600
    assert f'streamcrawl_kafka_topic_retention_seconds{{topic="crawl.request"}} {retention:.1f}' in text
    assert "streamcrawl_lag_exporter_up 1.0" in text

    # Once the group commits everything, lag and age drop to zero.
    await _commit(broker, group, 3, 5)
    reading = next(
        r for r in (await read_snapshot(broker, timeout_s=5)).groups if r.partition == 3 and r.group == group
    )
    assert reading.lag == 0
