"""Kafka lag exporter: consumer lag per group and partition as Prometheus metrics.

``python -m workers.observability.lag_exporter`` serves ``/metrics`` on
``STREAMCRAWL_METRICS_BASE_PORT + 90`` and, every ``STREAMCRAWL_METRICS_LAG_EXPORTER_INTERVAL_S``,
reads for every stage's consumer group, computed the portable way (``workers/lag.py``):

* the high watermark of every registry topic partition, from fetch responses (right on
  Tansu and on Apache Kafka, where ``ListOffsets(LATEST)`` is not on Tansu);
* the group's committed offsets, asked with the partitions listed explicitly, on its input
  topic and on every other registry topic it has committed on (so a group reading several
  topics, like discovery, is covered without knowing its subscription);
* lag = high watermark - committed, and the **age of the oldest unconsumed record** (its
  timestamp, read by fetching the record at the committed offset), which the alert rules
  compare with the topic's retention from the registry.

A scrape always sees one whole snapshot (a custom collector serves the last complete
reading); a failed reading keeps the previous snapshot and sets ``streamcrawl_lag_exporter_up 0``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from prometheus_client import REGISTRY, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from workers.kafka import make_admin, make_consumer
from workers.lag import high_watermarks
from workers.lifecycle.runner import die_with_parent
from workers.observability.logs import configure_logging
from workers.observability.metrics import LAG_EXPORTER_PORT_OFFSET
from workers.settings import KafkaSettings, Settings
from workers.topics import REGISTRY as TOPICS
from workers.topics import STAGES, Topic

__all__ = ["GroupReading", "LagSnapshot", "SnapshotCollector", "read_snapshot", "run"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class GroupReading:
    """One consumer group on one topic partition."""

    group: str
    stage: str
    topic: str
    partition: int
    committed: int | None
    high_watermark: int
    oldest_unconsumed_ts: float | None = None
    """Timestamp (epoch s) of the record at the committed offset; None when there is no lag."""

    @property
    def lag(self) -> int:
        return max(0, self.high_watermark - (self.committed or 0))


@dataclass(frozen=True, slots=True)
class LagSnapshot:
    taken_at: float
    high_watermarks: dict[str, dict[int, int]]
    groups: tuple[GroupReading, ...] = field(default_factory=tuple)

    def lag_seconds(self, reading: GroupReading) -> float:
        if reading.lag == 0 or reading.oldest_unconsumed_ts is None:
            return 0.0
        return max(0.0, self.taken_at - reading.oldest_unconsumed_ts)


async def _committed(
    kafka: KafkaSettings, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int]:
    admin = make_admin(kafka)
    await admin.start()
    try:
        # Partitions listed explicitly: without them aiokafka crashes decoding Tansu's answer.
        offsets = await admin.list_consumer_group_offsets(group, partitions=tps)
    finally:
        await admin.close()
    return {tp: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}


async def _timestamps_at(
    kafka: KafkaSettings, offsets: Mapping[TopicPartition, int], *, timeout_s: float
) -> dict[TopicPartition, float]:
    """Timestamp (epoch s) of the record at each given offset, fetched with a group-less consumer."""
    if not offsets:
        return {}
    consumer = make_consumer(kafka, group_id=None, client_id="streamcrawl-lag-exporter", max_poll_records=50)
    out: dict[TopicPartition, float] = {}
    try:
        await consumer.start()
        consumer.assign(list(offsets))
        for tp, offset in offsets.items():
            consumer.seek(tp, offset)
        deadline = time.monotonic() + timeout_s
        while len(out) < len(offsets) and time.monotonic() < deadline:
            pending = [tp for tp in offsets if tp not in out]
            fetched = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in fetched.items():
                if records and tp not in out:
                    out[tp] = records[0].timestamp / 1000.0
                consumer.pause(tp)
    finally:
        await consumer.stop()
    return out


async def read_snapshot(
    kafka: KafkaSettings, *, topics: Iterable[Topic] = TOPICS, timeout_s: float = 10.0
) -> LagSnapshot:
    """One complete reading of every stage group's lag (raises KafkaError/OSError on failure)."""
    topics = tuple(topics)
    watermarks = await high_watermarks(kafka, topics, timeout_s=timeout_s)
    all_tps = [TopicPartition(t, p) for t, parts in watermarks.items() for p in parts]
    readings: list[GroupReading] = []
    for stage, spec in STAGES.items():
        committed = await _committed(kafka, spec.group, all_tps) if all_tps else {}
        names = {t.name for t in spec.inputs}
        own = {tp for tp in all_tps if tp.topic in names} | set(committed)
        # Where the group never committed, its next record is the log's first one (offset 0 is
        # reset to the log start by auto_offset_reset="earliest" once retention deleted it).
        lagging = {
            tp: committed.get(tp, 0)
            for tp in own
            if watermarks[tp.topic][tp.partition] > committed.get(tp, 0)
        }
        stamps = await _timestamps_at(kafka, lagging, timeout_s=timeout_s / 2)
        for tp in sorted(own, key=lambda t: (t.topic, t.partition)):
            hw = watermarks[tp.topic][tp.partition]
            first = committed.get(tp)
            readings.append(
                GroupReading(
                    group=spec.group,
                    stage=stage.value,
                    topic=tp.topic,
                    partition=tp.partition,
                    committed=first,
                    high_watermark=hw,
                    oldest_unconsumed_ts=stamps.get(tp),
                )
            )
    return LagSnapshot(taken_at=time.time(), high_watermarks=watermarks, groups=tuple(readings))


class SnapshotCollector(Collector):
    """Serves the last complete snapshot, so a scrape never sees half a reading."""

    def __init__(self, topics: Iterable[Topic] = TOPICS) -> None:
        self.topics = tuple(topics)
        self.snapshot: LagSnapshot | None = None
        self.last_error: str | None = None
        self.collect_seconds = 0.0
        self.failures = 0

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "streamcrawl_lag_exporter_up", "1 when the last reading of the broker succeeded"
        )
        up.add_metric([], 0.0 if self.last_error or self.snapshot is None else 1.0)
        yield up
        failures = GaugeMetricFamily(
            "streamcrawl_lag_exporter_failures", "Readings of the broker that failed since the start"
        )
        failures.add_metric([], float(self.failures))
        yield failures
        retention = GaugeMetricFamily(
            "streamcrawl_kafka_topic_retention_seconds",
            "retention.ms of the topic in the registry (workers/topics.py), in seconds",
            labels=["topic"],
        )
        for topic in self.topics:
            retention.add_metric([topic.name], topic.retention_hours * 3600.0)
        yield retention
        snap = self.snapshot
        if snap is None:
            return
        taken = GaugeMetricFamily(
            "streamcrawl_lag_exporter_last_success_timestamp_seconds", "When the served snapshot was taken"
        )
        taken.add_metric([], snap.taken_at)
        yield taken
        duration = GaugeMetricFamily(
            "streamcrawl_lag_exporter_collect_seconds", "How long the served snapshot took to read"
        )
        duration.add_metric([], self.collect_seconds)
        yield duration
        hw = GaugeMetricFamily(
            "streamcrawl_kafka_topic_high_watermark",
            "Log end offset (high watermark from fetch responses)",
            labels=["topic", "partition"],
        )
        for name, parts in sorted(snap.high_watermarks.items()):
            for partition, value in sorted(parts.items()):
                hw.add_metric([name, str(partition)], float(value))
        yield hw
        labels = ["group", "stage", "topic", "partition"]
        committed = GaugeMetricFamily(
            "streamcrawl_kafka_group_committed_offset", "Committed offset of the group", labels=labels
        )
        lag = GaugeMetricFamily(
            "streamcrawl_kafka_group_lag", "High watermark minus the group's committed offset", labels=labels
        )
        lag_s = GaugeMetricFamily(
            "streamcrawl_kafka_group_lag_seconds",
            "Age of the oldest record the group has not committed yet (0 without lag)",
            labels=labels,
        )
        for r in snap.groups:
            values = [r.group, r.stage, r.topic, str(r.partition)]
            if r.committed is not None:
                committed.add_metric(values, float(r.committed))
            lag.add_metric(values, float(r.lag))
            lag_s.add_metric(values, snap.lag_seconds(r))
        yield committed
        yield lag
        yield lag_s


async def _loop(settings: Settings, collector: SnapshotCollector, stop: asyncio.Event) -> None:
    interval = settings.metrics.lag_exporter_interval_s
    while not stop.is_set():
        started = time.monotonic()
        try:
            async with asyncio.timeout(max(5.0, interval * 2)):
                snapshot = await read_snapshot(settings.kafka, timeout_s=min(10.0, max(2.0, interval)))
        except (KafkaError, OSError, TimeoutError) as exc:
            collector.failures += 1
            collector.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("lag reading failed: %s", collector.last_error)
        else:
            collector.snapshot = snapshot
            collector.last_error = None
            collector.collect_seconds = time.monotonic() - started
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(0.0, interval - (time.monotonic() - started)))


async def run(settings: Settings) -> None:
    """Serve the exporter until SIGTERM/SIGINT."""
    collector = SnapshotCollector()
    REGISTRY.register(collector)
    port = settings.metrics.base_port + LAG_EXPORTER_PORT_OFFSET
    start_http_server(port, addr=settings.metrics.bind_host)
    log.info("lag exporter on %s:%d", settings.metrics.bind_host, port)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await _loop(settings, collector, stop)
    log.info("stopped")


def main() -> None:
    die_with_parent()  # like the stages: a supervisord killed with -9 leaves no exporter behind
    settings = Settings.load()
    configure_logging("lag_exporter", settings.metrics.log_level)
    asyncio.run(run(settings))


if __name__ == "__main__":
    main()
