"""Reading ``*.dlq`` topics: assign-mode consumers, positions, chunks, letters.

The replay group (``streamcrawl.dlq_replay.<topic>``, :func:`replay_group`) is used in
assign mode (no group membership, so no rebalance wait); its committed offsets mark how
far a DLQ was replayed. The log end is the portable high watermark of :mod:`workers.lag`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from typing import TypeAlias

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from workers.errors import MessageDecodeError
from workers.kafka import make_consumer
from workers.lag import high_watermarks
from workers.messages import DeadLetter, decode
from workers.settings import KafkaSettings
from workers.topics import Topic

__all__ = [
    "CHUNK",
    "Record",
    "decode_letter",
    "open_dlq",
    "placeholder",
    "read_dead_letters",
    "read_letters_after",
    "reader",
    "replay_group",
    "require_dlq",
]

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
CHUNK = 500
_IDLE_POLLS = 3


def replay_group(topic: Topic) -> str:
    """The consumer group whose committed offsets mark how far ``topic`` was replayed."""
    return f"streamcrawl.dlq_replay.{topic.name}"


def require_dlq(topic: Topic) -> None:
    if not topic.is_dlq:
        raise ValueError(f"{topic.name} is not a dead-letter topic")


def decode_letter(record: Record) -> DeadLetter | None:
    try:
        return decode(record.value, DeadLetter)
    except MessageDecodeError:
        return None


def placeholder(record: Record) -> DeadLetter:
    """Stands in for a record of a DLQ that is not a DeadLetter at all (so it can be parked)."""
    now = time.time()
    return DeadLetter(
        payload=record.value or b"",
        key=record.key,
        source_topic="",
        partition=record.partition,
        offset=record.offset,
        stage="unknown",
        error_class="MessageDecodeError",
        error_message="the dead-letter record itself cannot be decoded",
        attempt=0,
        first_failure_at=now,
        last_failure_at=now,
    )


async def _start_positions(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], *, from_committed: bool
) -> dict[TopicPartition, int]:
    out: dict[TopicPartition, int] = {}
    for tp in tps:
        committed = await consumer.committed(tp) if from_committed else None
        out[tp] = committed if committed is not None and committed >= 0 else 0
        consumer.seek(tp, out[tp])
    return out


def reader(
    consumer: AIOKafkaConsumer,
    ends: dict[TopicPartition, int],
    *,
    limit: int,
    stopped: Collection[int] = (),
) -> Callable[[], Awaitable[list[Record]]]:
    """A reader returning the next chunk (in offset order per partition) until ``ends`` or
    ``limit``; partitions in ``stopped`` (a set the caller may grow) are read no further."""
    remaining = limit

    async def next_chunk() -> list[Record]:
        nonlocal remaining
        out: list[Record] = []
        idle = 0
        while remaining > 0 and len(out) < CHUNK and idle < _IDLE_POLLS:
            open_tps = [
                tp
                for tp, end in ends.items()
                if tp.partition not in stopped and await consumer.position(tp) < end
            ]
            if not open_tps:
                break
            batch = await consumer.getmany(*open_tps, timeout_ms=500, max_records=CHUNK)
            idle = 0 if batch else idle + 1
            for tp, records in batch.items():
                for record in records:
                    if record.offset >= ends[tp] or remaining <= 0:
                        consumer.seek(tp, record.offset)  # leave the rest for a later call
                        break
                    out.append(record)
                    remaining -= 1
        return out

    return next_chunk


async def open_dlq(
    kafka: KafkaSettings,
    topic: Topic,
    *,
    group: str | None,
    from_committed: bool,
    start: dict[int, int] | None = None,
) -> tuple[AIOKafkaConsumer, dict[TopicPartition, int]]:
    """A started assign-mode consumer positioned at the start, and the end of each partition.

    The start is ``start[partition]`` when given, else the group's committed offset
    (``from_committed``), else the beginning.
    """
    ends_by_topic = await high_watermarks(kafka, [topic])
    hws = ends_by_topic.get(topic.name, {})
    consumer = make_consumer(kafka, group_id=group, client_id="streamcrawl-dlq", max_poll_records=CHUNK)
    await consumer.start()
    # Let the consumer's background tasks begin: stopping it before they ran once makes
    # aiokafka's stop() raise CancelledError (a start/stop with nothing to read does that).
    await asyncio.sleep(0)
    try:
        tps = [TopicPartition(topic.name, p) for p in sorted(hws)]
        consumer.assign(tps)
        await _start_positions(consumer, tps, from_committed=from_committed)
        for tp in tps:
            if start is not None and tp.partition in start:
                consumer.seek(tp, start[tp.partition])
    except BaseException:
        await consumer.stop()
        raise
    return consumer, {tp: hws[tp.partition] for tp in tps}


async def read_letters_after(
    kafka: KafkaSettings, topic: Topic, *, positions: dict[int, int], limit: int
) -> tuple[list[tuple[Record, DeadLetter]], dict[int, int]]:
    """Letters from ``positions`` (partition -> next offset; missing = 0) on, and the new positions.

    For cursor-driven readers (Dagster's completion sensor); nothing is committed.
    """
    require_dlq(topic)
    consumer, ends = await open_dlq(kafka, topic, group=None, from_committed=False, start=positions)
    out: list[tuple[Record, DeadLetter]] = []
    try:
        next_chunk = reader(consumer, ends, limit=limit)
        while chunk := await next_chunk():
            out.extend((r, decode_letter(r) or placeholder(r)) for r in chunk)
        after = dict(positions)
        for tp in ends:
            after[tp.partition] = await consumer.position(tp)
    finally:
        await consumer.stop()
    return out, after


async def read_dead_letters(
    kafka: KafkaSettings, topic: Topic, *, limit: int, from_beginning: bool = True
) -> list[tuple[Record, DeadLetter]]:
    """Up to ``limit`` letters of ``topic``, oldest first; nothing is committed.

    ``from_beginning=False`` starts at the replay group's committed offsets (letters not
    replayed yet). Records that are not DeadLetters are returned as a placeholder letter
    with ``error_class="MessageDecodeError"`` and an empty ``source_topic``.
    """
    require_dlq(topic)
    group = None if from_beginning else replay_group(topic)
    consumer, ends = await open_dlq(kafka, topic, group=group, from_committed=not from_beginning)
    out: list[tuple[Record, DeadLetter]] = []
    try:
        next_chunk = reader(consumer, ends, limit=limit)
        while chunk := await next_chunk():
            out.extend((r, decode_letter(r) or placeholder(r)) for r in chunk)
    finally:
        await consumer.stop()
    return out
