"""Produce and consume in tests, through the same client factories the workers use."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import ConsumerRecord, TopicPartition

from workers.kafka import make_consumer, make_producer
from workers.settings import KafkaSettings
from workers.topics import Topic

__all__ = ["consume", "produce", "read_since"]


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


async def read_since(
    kafka: KafkaSettings, topic: Topic, start: dict[int, int], *, polls: int = 200
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of ``topic`` from ``start`` (partition -> offset; missing = 0) to the log
    end seen now, without a group (nothing committed)."""
    from workers.lag import high_watermarks

    ends = (await high_watermarks(kafka, [topic])).get(topic.name, {})
    consumer = make_consumer(kafka, group_id=None, client_id="streamcrawl-test-reader")
    await consumer.start()
    await asyncio.sleep(0)  # aiokafka's stop() right after start() raises CancelledError otherwise
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tps = [TopicPartition(topic.name, p) for p in ends]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        for _ in range(polls):
            if all([await consumer.position(tp) >= ends[tp.partition] for tp in tps]):
                break
            for batch in (await consumer.getmany(timeout_ms=200)).values():
                records += [r for r in batch if r.offset < ends[r.partition]]
    finally:
        await consumer.stop()
    return records
