"""Produce and consume in tests, through the same client factories the workers use."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import ConsumerRecord, TopicPartition

from workers.kafka import make_consumer, make_producer
from workers.lag import high_watermarks
from workers.settings import KafkaSettings
from workers.topics import Topic

__all__ = ["consume", "produce", "read_all"]


async def produce(
    kafka: KafkaSettings,
    topic: Topic,
    values: Sequence[bytes],
    *,
    key: bytes | None = None,
    headers: Sequence[tuple[str, bytes]] | None = None,
) -> None:
    """Send ``values`` to ``topic`` (acks=all) and wait until every one is acknowledged."""
    producer = make_producer(kafka, client_id="streamcrawl-test-producer")
    await producer.start()
    try:
        futures = [
            await producer.send(topic.name, value, key=key, headers=list(headers) if headers else None)
            for value in values
        ]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def consume(
    kafka: KafkaSettings,
    topic: Topic,
    *,
    count: int,
    timeout: float = 20.0,  # noqa: ASYNC109 - the helpers' documented signature
    group_id: str | None = None,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``count`` records of ``topic`` from the beginning (or the group's committed position).

    Without ``group_id`` every partition is assigned directly (no group join, fast). With a
    group, the group's offsets are committed just past the returned records. Raises TimeoutError with what was
    read when fewer than ``count`` records arrive within ``timeout`` seconds.
    """
    consumer = make_consumer(
        kafka,
        *(() if group_id is None else (topic.name,)),
        group_id=group_id,
        client_id="streamcrawl-test-consumer",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        if group_id is None:
            partitions = consumer.partitions_for_topic(topic.name) or set(range(topic.partitions))
            tps = [TopicPartition(topic.name, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while len(records) < count:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(f"read {len(records)} of {count} records from {topic.name} in {timeout} s")
            batch = await consumer.getmany(timeout_ms=int(min(remaining, 0.5) * 1000))
            for recs in batch.values():
                records.extend(recs)
        records = records[:count]
        if group_id is not None and records:
            positions: dict[TopicPartition, int] = {}
            for rec in records:
                tp = TopicPartition(rec.topic, rec.partition)
                positions[tp] = max(positions.get(tp, 0), rec.offset + 1)
            await consumer.commit(positions)
    finally:
        await consumer.stop()
    return records


async def read_all(
    kafka: KafkaSettings,
    topics: Sequence[Topic],
    *,
    since: dict[str, dict[int, int]] | None = None,
    timeout_s: float = 20.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topics`` up to their current ends (from ``since``, else the start).

    Ends are the high watermarks of fetch responses (workers/lag.py), right on every broker.
    """
    ends = await high_watermarks(kafka, topics)
    tps = [TopicPartition(t, p) for t, parts in ends.items() for p, end in parts.items() if end > 0]
    start = {tp: (since or {}).get(tp.topic, {}).get(tp.partition, 0) for tp in tps}
    todo = {tp for tp in tps if start[tp] < ends[tp.topic][tp.partition]}
    out: list[ConsumerRecord[bytes, bytes]] = []
    if not todo:
        return out
    consumer = make_consumer(kafka, group_id=None, client_id="streamcrawl-test-reader")
    await consumer.start()
    try:
        consumer.assign(sorted(todo))
        for tp in todo:
            consumer.seek(tp, start[tp])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while todo and loop.time() < deadline:
            batch = await consumer.getmany(*todo, timeout_ms=300)
            for tp, records in batch.items():
                end = ends[tp.topic][tp.partition]
                out.extend(r for r in records if r.offset < end)
                if records and records[-1].offset >= end - 1:
                    todo.discard(tp)
        if todo:
            raise TimeoutError(f"could not read {sorted(map(str, todo))} to their ends in {timeout_s} s")
    finally:
        await consumer.stop()
    return out
