"""Portable offsets and consumer lag.

``end_offsets()`` (ListOffsets LATEST) is wrong on the embedded Tansu broker, so the log
end of each partition is read as the **high watermark reported in fetch responses**
(``consumer.highwater(tp)`` after one fetch from that partition) — correct on Tansu and
on Apache Kafka alike. Lag = high watermark - committed offset of the group.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from workers.kafka import make_admin, make_consumer
from workers.settings import KafkaSettings
from workers.topics import Topic

__all__ = ["GroupLag", "group_lag", "high_watermarks"]


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
