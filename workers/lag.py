"""Portable offsets and consumer lag.

``end_offsets()`` (ListOffsets LATEST) is wrong on the embedded Tansu broker, so the log
end of each partition is read as the **high watermark reported in fetch responses**
(``consumer.highwater(tp)`` after one fetch from that partition) — correct on Tansu and
on Apache Kafka alike. Lag = high watermark - committed offset of the group.

**Oldest unconsumed record.** Lag in records says nothing about retention: Kafka deletes by
*age*. The age of the record at a group's committed offset (read back, its timestamp) is
how long the group has been behind on that partition; once it approaches the topic's
``retention.ms`` the broker is about to delete work nobody has done. Portable: record
timestamps and DescribeConfigs, no broker specifics (Tansu never deletes, yet the same
numbers tell an Apache Kafka operator when to act).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError

from workers.kafka import make_admin, make_consumer
from workers.settings import KafkaSettings
from workers.topics import Topic

__all__ = [
    "GroupLag",
    "OldestUnconsumed",
    "RetentionRisk",
    "group_lag",
    "high_watermarks",
    "oldest_unconsumed",
    "retention_ms",
    "retention_risk",
]


@dataclass(frozen=True, slots=True)
class GroupLag:
    group: str
    topic: str
    committed: dict[int, int]
    high_watermarks: dict[int, int]

    @property
    def per_partition(self) -> dict[int, int]:
        return {p: max(0, hw - self.committed.get(p, 0)) for p, hw in self.high_watermarks.items()}

    @property
    def total(self) -> int:
        return sum(self.per_partition.values())


async def _fetch_highwaters(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], timeout_s: float
) -> dict[TopicPartition, int]:
    consumer.assign(tps)
    # Start near the end (ListOffsets may under-report on Tansu, which only means the fetch
    # returns the last batch); the fetch response carries the true high watermark.
    await consumer.seek_to_end(*tps)
    out: dict[TopicPartition, int] = {}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(out) < len(tps) and asyncio.get_running_loop().time() < deadline:
        await consumer.getmany(*[tp for tp in tps if tp not in out], timeout_ms=200, max_records=1)
        for tp in tps:
            hw = consumer.highwater(tp)
            if hw is not None:
                out[tp] = hw
    return out


async def high_watermarks(
    settings: KafkaSettings, topics: Iterable[Topic], *, timeout_s: float = 10.0
) -> dict[str, dict[int, int]]:
    """Log end offset per topic and partition, from fetch responses. Missing topics are omitted."""
    consumer = make_consumer(settings, group_id=None, client_id="streamcrawl-lag", max_poll_records=1)
    try:
        await consumer.start()  # inside the try: a failed start must still close the client
        tps: list[TopicPartition] = []
        for topic in topics:
            parts = consumer.partitions_for_topic(topic.name)
            if parts is None:
                with contextlib.suppress(KafkaError):
                    await consumer._client.force_metadata_update()
                parts = consumer.partitions_for_topic(topic.name)
            tps.extend(TopicPartition(topic.name, p) for p in sorted(parts or ()))
        found = await _fetch_highwaters(consumer, tps, timeout_s) if tps else {}
    finally:
        await consumer.stop()
    out: dict[str, dict[int, int]] = {}
    for tp, hw in found.items():
        out.setdefault(tp.topic, {})[tp.partition] = hw
    return out


async def group_lag(
    settings: KafkaSettings,
    group: str,
    topic: Topic,
    *,
    watermarks: dict[str, dict[int, int]] | None = None,
) -> GroupLag:
    """Committed offsets of ``group`` on ``topic`` against the topic's high watermarks."""
    if watermarks is None:
        watermarks = await high_watermarks(settings, [topic])
    hws = watermarks.get(topic.name, {})
    committed: dict[int, int] = {}
    if hws:
        admin = make_admin(settings)
        await admin.start()
        try:
            # Pass partitions explicitly: without them aiokafka crashes decoding Tansu's answer.
            offsets = await admin.list_consumer_group_offsets(
                group, partitions=[TopicPartition(topic.name, p) for p in hws]
            )
        finally:
            await admin.close()
        committed = {tp.partition: meta.offset for tp, meta in offsets.items() if meta.offset >= 0}
    return GroupLag(group=group, topic=topic.name, committed=committed, high_watermarks=hws)


@dataclass(frozen=True, slots=True)
class OldestUnconsumed:
    """Per partition with lag: age in seconds of the first record the group has not committed."""

    group: str
    topic: str
    ages_s: dict[int, float]

    @property
    def oldest_s(self) -> float:
        """The group's worst partition (0 when it is caught up everywhere)."""
        return max(self.ages_s.values(), default=0.0)


async def _first_records(
    consumer: AIOKafkaConsumer, starts: dict[TopicPartition, int | None], timeout_s: float
) -> dict[TopicPartition, int]:
    """Timestamp (ms) of the record at each start offset (None: the partition's first record)."""
    consumer.assign(list(starts))
    for tp, offset in starts.items():
        if offset is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, offset)
    out: dict[TopicPartition, int] = {}
    deadline = asyncio.get_running_loop().time() + timeout_s
    while len(out) < len(starts) and asyncio.get_running_loop().time() < deadline:
        wanted = [tp for tp in starts if tp not in out]
        fetched = await consumer.getmany(*wanted, timeout_ms=200, max_records=len(wanted))
        for tp, records in fetched.items():
            if records and tp not in out:
                out[tp] = records[0].timestamp
                consumer.pause(tp)
    return out


async def oldest_unconsumed(
    settings: KafkaSettings,
    group: str,
    topic: Topic,
    *,
    lag: GroupLag | None = None,
    now: float | None = None,
    timeout_s: float = 10.0,
) -> OldestUnconsumed:
    """Read back the record at ``group``'s committed offset of every lagging partition."""
    if lag is None:
        lag = await group_lag(settings, group, topic)
    behind = {
        TopicPartition(topic.name, p): lag.committed.get(p)  # None: never committed, from the start
        for p, behind_by in lag.per_partition.items()
        if behind_by > 0
    }
    ages: dict[int, float] = {}
    if behind:
        consumer = make_consumer(settings, group_id=None, client_id="streamcrawl-age", max_poll_records=1)
        try:
            await consumer.start()
            stamps = await _first_records(consumer, behind, timeout_s)
        finally:
            await consumer.stop()
        clock = time.time() if now is None else now
        ages = {tp.partition: max(0.0, clock - ts / 1000) for tp, ts in stamps.items()}
    return OldestUnconsumed(group=group, topic=topic.name, ages_s=ages)


async def retention_ms(settings: KafkaSettings, topics: Iterable[Topic]) -> dict[str, int]:
    """Each topic's ``retention.ms`` as the broker reports it (the registry's value if it does not)."""
    wanted = list(topics)
    out = {t.name: int(t.configs["retention.ms"]) for t in wanted}
    admin = make_admin(settings)
    try:
        await admin.start()
        responses = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, t.name) for t in wanted]
        )
    except KafkaError:
        return out
    finally:
        await admin.close()
    for response in responses:
        # resources: (error_code, error_message, resource_type, resource_name, config_entries)
        for error, _message, _type, name, entries in response.resources:
            for entry in entries if error == 0 else ():
                if entry[0] == "retention.ms" and entry[1] is not None and name in out:
                    with contextlib.suppress(ValueError):
                        out[name] = int(entry[1])
    return out


@dataclass(frozen=True, slots=True)
class RetentionRisk:
    """How close a group's oldest unconsumed record is to being deleted by retention."""

    group: str
    topic: str
    oldest_s: float
    retention_s: float
    """<= 0: the topic keeps records forever (retention.ms = -1)."""
    threshold: float

    @property
    def share(self) -> float:
        """Oldest unconsumed age as a share of retention (0 when retention is unlimited)."""
        return self.oldest_s / self.retention_s if self.retention_s > 0 else 0.0

    @property
    def at_risk(self) -> bool:
        return self.share >= self.threshold

    @property
    def seconds_left(self) -> float | None:
        """Until the oldest unconsumed record may be deleted (None: never)."""
        return max(0.0, self.retention_s - self.oldest_s) if self.retention_s > 0 else None


def retention_risk(oldest: OldestUnconsumed, retention_ms_value: int, *, threshold: float) -> RetentionRisk:
    return RetentionRisk(
        group=oldest.group,
        topic=oldest.topic,
        oldest_s=oldest.oldest_s,
        retention_s=retention_ms_value / 1000 if retention_ms_value > 0 else 0.0,
        threshold=threshold,
    )
