"""Dead letters: read them, replay them, park the hopeless ones.

Shared by the CLI and Dagster's ``dlq_replay`` job, so a dead letter is replayed in
exactly one way:

* :func:`read_dead_letters` reads a ``*.dlq`` topic without committing anything (from the
  beginning, or from where the replay group stands: the letters not replayed yet).
* :func:`replay` reads the letters after its own consumer group's committed offsets
  (group ``streamcrawl.dlq_replay.<topic>``, see :func:`replay_group`) up to the high
  watermark seen when it starts, and for each letter either

  - re-publishes the original payload, byte for byte, to its source topic with the
    original key and Kafka header ``attempt`` = the letter's attempt + 1, or
  - **parks** it (hands it to ``park``: see :func:`postgres_parker` and the
    ``dlq_parked`` table) when it already failed ``max_attempts`` times, cannot be decoded,
    or names a source topic the registry does not know. A parked letter is never
    replayed again, so a poison record cannot loop.

  Offsets are committed per chunk only **after** every re-publish of the chunk was
  acknowledged and every park was written (at-least-once: a crash in between replays the
  chunk again; the stages' sinks are idempotent). With an ``error_class`` filter, a letter
  of another class is skipped and the commit of its partition stops just before it, so a
  later unfiltered replay still sees it (letters after it may then be replayed twice).
  ``dry_run`` only reads and reports.

The group is used in assign mode (no group membership, so no rebalance wait) and the log
end is the portable high watermark of :mod:`workers.lag`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TypeAlias

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.structs import OffsetAndMetadata

from workers.errors import MessageDecodeError
from workers.kafka import make_consumer, make_producer
from workers.lag import high_watermarks
from workers.messages import DeadLetter, decode, make_headers, read_headers
from workers.settings import KafkaSettings, PostgresSettings
from workers.topics import Topic, topic_by_name

__all__ = [
    "PARKED_TABLE_DDL",
    "ParkFn",
    "Parked",
    "ReplayReport",
    "SettleFn",
    "count_parked",
    "postgres_parker",
    "read_dead_letters",
    "read_letters_after",
    "replay",
    "replay_group",
]

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"
_CHUNK = 500
_IDLE_POLLS = 3


@dataclass(frozen=True, slots=True)
class Parked:
    """A dead letter taken out of circulation, with why."""

    record: Record
    letter: DeadLetter
    reason: str


ParkFn = Callable[[Sequence[Parked]], Awaitable[None]]
"""Writes parked letters somewhere durable; must be idempotent (a chunk may be parked twice)."""
SettleFn = Callable[[Sequence[DeadLetter]], Awaitable[Sequence[bool]]]
"""Per letter of a chunk: True when it needs no replay any more (see :func:`replay`)."""


@dataclass(slots=True)
class ReplayReport:
    topic: str
    group: str
    dry_run: bool
    read: int = 0
    replayed: int = 0
    parked: int = 0
    skipped: int = 0
    """Letters left alone by the error-class filter."""
    resolved: int = 0
    """Letters committed past without a replay: ``settled`` said their URL was stored since."""
    undecodable: int = 0
    by_error_class: dict[str, int] = field(default_factory=dict)
    replayed_to: dict[str, int] = field(default_factory=dict)
    parked_letters: list[dict[str, object]] = field(default_factory=list)
    """Where and why each parked letter was parked (no payloads)."""
    committed: dict[int, int] = field(default_factory=dict)
    """Partition -> offset committed for the replay group."""


def replay_group(topic: Topic) -> str:
    """The consumer group whose committed offsets mark how far ``topic`` was replayed."""
    return f"streamcrawl.dlq_replay.{topic.name}"


def _require_dlq(topic: Topic) -> None:
    if not topic.is_dlq:
        raise ValueError(f"{topic.name} is not a dead-letter topic")


def _decode_letter(record: Record) -> DeadLetter | None:
    try:
        return decode(record.value, DeadLetter)
    except MessageDecodeError:
        return None


def _placeholder(record: Record) -> DeadLetter:
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


def _reader(
    consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int], *, limit: int
) -> Callable[[], Awaitable[list[Record]]]:
    """A reader returning the next chunk (in offset order per partition) until ``ends`` or ``limit``."""
    remaining = limit

    async def next_chunk() -> list[Record]:
        nonlocal remaining
        out: list[Record] = []
        idle = 0
        while remaining > 0 and len(out) < _CHUNK and idle < _IDLE_POLLS:
            open_tps = [tp for tp, end in ends.items() if await consumer.position(tp) < end]
            if not open_tps:
                break
            batch = await consumer.getmany(*open_tps, timeout_ms=500, max_records=_CHUNK)
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


async def _open(
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
    consumer = make_consumer(kafka, group_id=group, client_id="streamcrawl-dlq", max_poll_records=_CHUNK)
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
    _require_dlq(topic)
    consumer, ends = await _open(kafka, topic, group=None, from_committed=False, start=positions)
    out: list[tuple[Record, DeadLetter]] = []
    try:
        next_chunk = _reader(consumer, ends, limit=limit)
        while chunk := await next_chunk():
            out.extend((r, _decode_letter(r) or _placeholder(r)) for r in chunk)
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
    _require_dlq(topic)
    group = None if from_beginning else replay_group(topic)
    consumer, ends = await _open(kafka, topic, group=group, from_committed=not from_beginning)
    out: list[tuple[Record, DeadLetter]] = []
    try:
        next_chunk = _reader(consumer, ends, limit=limit)
        while chunk := await next_chunk():
            out.extend((r, _decode_letter(r) or _placeholder(r)) for r in chunk)
    finally:
        await consumer.stop()
    return out


def _classify(
    record: Record, letter: DeadLetter | None, *, max_attempts: int
) -> tuple[DeadLetter, int, str | None]:
    """(letter, attempt so far, park reason or None to replay)."""
    if letter is None:
        return _placeholder(record), 0, "undecodable dead letter"
    _trace, header_attempt = read_headers(record.headers)
    attempt = max(letter.attempt, header_attempt)
    if attempt >= max_attempts:
        return letter, attempt, f"failed {attempt} times (max_attempts={max_attempts})"
    try:
        topic_by_name(letter.source_topic)
    except KeyError:
        return letter, attempt, f"unknown source topic {letter.source_topic!r}"
    return letter, attempt, None


async def replay(
    kafka: KafkaSettings,
    topic: Topic,
    *,
    max_records: int,
    max_attempts: int,
    park: ParkFn,
    error_class: str | None = None,
    select: Callable[[DeadLetter], bool] | None = None,
    settled: SettleFn | None = None,
    dry_run: bool = False,
) -> ReplayReport:
    """Replay up to ``max_records`` letters of ``topic``; see the module docstring.

    ``select`` narrows the letters like ``error_class`` does: a letter it refuses is skipped
    the same way. ``settled`` tells, per chunk, which letters need no replay any more (their
    URL was stored since): those are counted ``resolved`` and committed past, neither
    replayed nor parked. workers/triage.py builds both from the CLI's and the job's filters.
    """
    _require_dlq(topic)
    group = replay_group(topic)
    report = ReplayReport(topic=topic.name, group=group, dry_run=dry_run)
    consumer, ends = await _open(kafka, topic, group=group, from_committed=True)
    producer = None if dry_run else make_producer(kafka, client_id="streamcrawl-dlq-replay")
    try:
        if producer is not None:
            await producer.start()
        next_chunk = _reader(consumer, ends, limit=max_records)
        blocked: set[int] = set()  # partitions whose commit stopped at a filtered-out letter
        while chunk := await next_chunk():
            acks = []
            parked: list[Parked] = []
            commits: dict[TopicPartition, int] = {}
            letters = [_decode_letter(r) for r in chunk]
            known = [x for x in letters if x is not None]
            flags = iter(await settled(known) if settled is not None and known else ())
            done = [x is not None and bool(next(flags, False)) for x in letters]
            for record, decoded, resolved in zip(chunk, letters, done, strict=True):
                report.read += 1
                letter, attempt, reason = _classify(record, decoded, max_attempts=max_attempts)
                report.by_error_class[letter.error_class] = (
                    report.by_error_class.get(letter.error_class, 0) + 1
                )
                if (error_class is not None and letter.error_class != error_class) or (
                    select is not None and not select(letter)
                ):
                    report.skipped += 1
                    blocked.add(record.partition)
                    continue
                if resolved:
                    report.resolved += 1
                elif reason is not None:
                    if letter.stage == "unknown":
                        report.undecodable += 1
                    report.parked += 1
                    parked.append(Parked(record, letter, reason))
                    report.parked_letters.append(
                        {
                            "partition": record.partition,
                            "offset": record.offset,
                            "url": letter.url,
                            "error_class": letter.error_class,
                            "attempt": attempt,
                            "reason": reason,
                        }
                    )
                else:
                    report.replayed += 1
                    report.replayed_to[letter.source_topic] = (
                        report.replayed_to.get(letter.source_topic, 0) + 1
                    )
                    if producer is not None:
                        trace, _ = read_headers(record.headers)
                        acks.append(
                            await producer.send(
                                letter.source_topic,
                                letter.payload,
                                key=letter.key,
                                headers=make_headers(trace, attempt + 1),
                            )
                        )
                if record.partition not in blocked:
                    commits[TopicPartition(record.topic, record.partition)] = record.offset + 1
            if dry_run:
                continue
            for ack in acks:
                await ack
            if parked:
                await park(parked)
            if commits:
                await consumer.commit({tp: OffsetAndMetadata(off, "") for tp, off in commits.items()})
                report.committed.update({tp.partition: off for tp, off in commits.items()})
    finally:
        try:
            if producer is not None:
                await producer.stop()
        finally:
            await consumer.stop()
    return report


# ---------------------------------------------------------------- parking in PostgreSQL

PARKED_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS dlq_parked (
    dlq_topic        text NOT NULL,
    dlq_partition    integer NOT NULL,
    dlq_offset       bigint NOT NULL,
    source_topic     text NOT NULL,
    stage            text NOT NULL,
    error_class      text NOT NULL,
    error_message    text NOT NULL,
    attempt          integer NOT NULL,
    reason           text NOT NULL,
    url              text,
    url_hash         text,
    batch            text,
    rank             integer,
    record_key       bytea,
    payload          bytea NOT NULL,
    last_failure_at  timestamptz,
    parked_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
)
"""


def postgres_parker(pg: PostgresSettings) -> ParkFn:
    """A park function writing to the ``dlq_parked`` table (created if missing; idempotent)."""

    async def park(items: Sequence[Parked]) -> None:
        conn = await asyncpg.connect(pg.dsn())
        try:
            await conn.execute(PARKED_TABLE_DDL)
            await conn.executemany(
                "INSERT INTO dlq_parked (dlq_topic, dlq_partition, dlq_offset, source_topic, stage,"
                " error_class, error_message, attempt, reason, url, url_hash, batch, rank, record_key,"
                " payload, last_failure_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12,"
                " $13, $14, $15, to_timestamp($16)) ON CONFLICT DO NOTHING",
                [
                    (
                        p.record.topic,
                        p.record.partition,
                        p.record.offset,
                        p.letter.source_topic,
                        p.letter.stage,
                        p.letter.error_class,
                        p.letter.error_message,
                        p.letter.attempt,
                        p.reason,
                        p.letter.url,
                        p.letter.url_hash,
                        p.letter.batch,
                        p.letter.rank,
                        p.letter.key,
                        p.letter.payload,
                        p.letter.last_failure_at,
                    )
                    for p in items
                ],
            )
        finally:
            await conn.close()

    return park


async def count_parked(pg: PostgresSettings, *, dlq_topic: Topic | None = None) -> int:
    """Parked letters, in total or of one DLQ (0 when nothing was ever parked)."""
    conn = await asyncpg.connect(pg.dsn())
    try:
        if await conn.fetchval("SELECT to_regclass('dlq_parked')") is None:
            return 0
        if dlq_topic is None:
            value = await conn.fetchval("SELECT count(*) FROM dlq_parked")
        else:
            value = await conn.fetchval(
                "SELECT count(*) FROM dlq_parked WHERE dlq_topic = $1", dlq_topic.name
            )
        return int(value)
    finally:
        await conn.close()
