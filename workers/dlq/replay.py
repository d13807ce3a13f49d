"""Replay a dead-letter topic under a :class:`~workers.dlq.policy.ReplayPolicy`.

:func:`replay` reads the letters after its own consumer group's committed offsets up to
the high watermark seen when it starts, and for each letter (see ``policy.py``):

* **replay**: re-publish the original payload, byte for byte, to its source topic with
  the original key and Kafka header ``attempt`` = the letter's attempt + 1, and remember
  the failure (``dlq_history``) for the error chain;
* **park**: hand it to ``park`` (``dlq_parked``, with its error chain) — not retryable,
  past ``max_attempts``, undecodable, or an unknown source topic. A parked letter is
  never replayed again, so a poison record cannot loop;
* **wait** (not due yet): stop reading that partition there; nothing after it is
  committed, so nothing is replayed twice, and a later run picks it up once it is due
  (``ReplayReport.next_due_at``);
* **skip** (``error_class`` filter): the commit of its partition stops just before it, so a
  later unfiltered replay still sees it (letters after it may then be replayed twice).

Offsets are committed per chunk only **after** every re-publish of the chunk was
acknowledged and every park and history row was written (at-least-once: a crash in
between replays the chunk again; the stages' sinks are idempotent). ``dry_run`` only
reads and reports.

:func:`replay_states` is the sensor's cheap look: pending letters per partition and when
the first of them is due (reading one letter per partition).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from workers.dlq.parking import Parked, ParkFn, RememberFn
from workers.dlq.policy import ReplayPolicy
from workers.dlq.reading import (
    Record,
    decode_letter,
    open_dlq,
    placeholder,
    reader,
    replay_group,
    require_dlq,
)
from workers.kafka import make_admin, make_consumer, make_producer
from workers.lag import high_watermarks
from workers.messages import DeadLetter, make_headers, read_headers
from workers.settings import KafkaSettings
from workers.topics import Topic

__all__ = ["ReplayReport", "ReplayState", "SettleFn", "replay", "replay_state", "replay_states"]

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
    waiting: int = 0
    """Partitions stopped at a letter that is not due yet."""
    next_due_at: float | None = None
    """When the first waiting letter is due (epoch seconds)."""
    undecodable: int = 0
    by_error_class: dict[str, int] = field(default_factory=dict)
    replayed_to: dict[str, int] = field(default_factory=dict)
    parked_letters: list[dict[str, object]] = field(default_factory=list)
    """Where and why each parked letter was parked (no payloads)."""
    committed: dict[int, int] = field(default_factory=dict)
    """Partition -> offset committed for the replay group."""


def _attempt(record: Record, letter: DeadLetter) -> int:
    _trace, header_attempt = read_headers(record.headers)
    return max(letter.attempt, header_attempt)


async def replay(
    kafka: KafkaSettings,
    topic: Topic,
    *,
    max_records: int,
    policy: ReplayPolicy,
    park: ParkFn,
    remember: RememberFn | None = None,
    select: Callable[[DeadLetter], bool] | None = None,
    settled: SettleFn | None = None,
    dry_run: bool = False,
    clock: Callable[[], float] = time.time,
) -> ReplayReport:
    """Replay up to ``max_records`` letters of ``topic``; see the module docstring.

    ``select`` narrows the letters like the policy's error-class filter: a letter it refuses
    is skipped the same way. ``settled`` tells, per chunk, which letters need no replay any
    more (their URL was stored since): those are counted ``resolved`` and committed past,
    neither replayed nor parked. workers/triage.py builds both from the CLI's and the job's
    filters.
    """
    require_dlq(topic)
    group = replay_group(topic)
    report = ReplayReport(topic=topic.name, group=group, dry_run=dry_run)
    consumer, ends = await open_dlq(kafka, topic, group=group, from_committed=True)
    producer = None if dry_run else make_producer(kafka, client_id="streamcrawl-dlq-replay")
    try:
        if producer is not None:
            await producer.start()
        stopped: set[int] = set()  # partitions waiting at a letter that is not due yet
        next_chunk = reader(consumer, ends, limit=max_records, stopped=stopped)
        blocked: set[int] = set()  # partitions whose commit stopped at a filtered-out letter
        while chunk := await next_chunk():
            acks = []
            parked: list[Parked] = []
            replayed: list[tuple[Record, DeadLetter]] = []
            commits: dict[TopicPartition, int] = {}
            now = clock()
            letters = [decode_letter(r) for r in chunk]
            known = [x for x in letters if x is not None]
            flags = iter(await settled(known) if settled is not None and known else ())
            done = [x is not None and bool(next(flags, False)) for x in letters]
            for record, decoded, resolved in zip(chunk, letters, done, strict=True):
                if record.partition in stopped:
                    continue  # fetched past a waiting letter: left for a later run
                letter = decoded or placeholder(record)
                if resolved or (select is not None and not select(letter)):
                    report.read += 1
                    if resolved:
                        report.resolved += 1
                    else:
                        report.skipped += 1
                        blocked.add(record.partition)
                    if record.partition not in blocked:
                        commits[TopicPartition(record.topic, record.partition)] = record.offset + 1
                    continue
                attempt = _attempt(record, letter) if decoded is not None else 0
                verdict = policy.judge(letter, attempt, now=now)
                if verdict.action == "wait":
                    report.waiting += 1
                    stopped.add(record.partition)
                    due = verdict.due_at
                    report.next_due_at = due if report.next_due_at is None else min(report.next_due_at, due)
                    continue
                report.read += 1
                report.by_error_class[letter.error_class] = (
                    report.by_error_class.get(letter.error_class, 0) + 1
                )
                if verdict.action == "skip":
                    report.skipped += 1
                    blocked.add(record.partition)
                    continue
                if verdict.action == "park":
                    assert verdict.reason is not None
                    report.undecodable += decoded is None
                    report.parked += 1
                    parked.append(Parked(record, letter, verdict.reason))
                    report.parked_letters.append(
                        {
                            "partition": record.partition,
                            "offset": record.offset,
                            "url": letter.url,
                            "error_class": letter.error_class,
                            "attempt": attempt,
                            "reason": verdict.reason,
                        }
                    )
                else:
                    report.replayed += 1
                    report.replayed_to[letter.source_topic] = (
                        report.replayed_to.get(letter.source_topic, 0) + 1
                    )
                    replayed.append((record, letter))
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
            if replayed and remember is not None:
                await remember(replayed)
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


@dataclass(slots=True)
class ReplayState:
    """How far a DLQ was replayed and when its next letter is due."""

    committed: dict[int, int]
    high_watermarks: dict[int, int]
    due_at: float | None
    """Earliest time a pending letter may be replayed or parked; None = nothing pending."""

    @property
    def pending(self) -> int:
        return sum(max(0, hw - self.committed.get(p, 0)) for p, hw in self.high_watermarks.items())


async def replay_states(
    kafka: KafkaSettings,
    topics: Sequence[Topic],
    *,
    policy: ReplayPolicy,
    clock: Callable[[], float] = time.time,
) -> dict[Topic, ReplayState]:
    """Per DLQ: committed offsets, log ends and the due time of the first pending letter.

    Three round trips whatever the number of DLQs: the log ends, the replay groups'
    offsets, then the first pending letter of each partition (at most one record each).
    """
    for topic in topics:
        require_dlq(topic)
    hws = await high_watermarks(kafka, topics)
    committed: dict[str, dict[int, int]] = {}
    admin = make_admin(kafka)
    await admin.start()
    try:
        for topic in topics:
            ends = hws.get(topic.name, {})
            if not ends:
                continue
            # Partitions passed explicitly: without them aiokafka crashes decoding Tansu's answer.
            offsets = await admin.list_consumer_group_offsets(
                replay_group(topic), partitions=[TopicPartition(topic.name, p) for p in ends]
            )
            committed[topic.name] = {tp.partition: m.offset for tp, m in offsets.items() if m.offset >= 0}
    finally:
        await admin.close()
    heads = await _heads(kafka, hws, committed)
    out: dict[Topic, ReplayState] = {}
    for topic in topics:
        ends = hws.get(topic.name, {})
        done = {p: committed.get(topic.name, {}).get(p, 0) for p in ends}
        due: float | None = None
        for p, end in ends.items():
            if done[p] >= end:
                continue
            record = heads.get(TopicPartition(topic.name, p))
            at = clock()
            if record is not None:
                decoded = decode_letter(record)
                letter = decoded or placeholder(record)
                verdict = policy.judge(letter, _attempt(record, letter) if decoded else 0, now=at)
                at = verdict.due_at if verdict.action == "wait" else at
            due = at if due is None else min(due, at)
        out[topic] = ReplayState(committed=done, high_watermarks=dict(ends), due_at=due)
    return out


async def _heads(
    kafka: KafkaSettings, hws: dict[str, dict[int, int]], committed: dict[str, dict[int, int]]
) -> dict[TopicPartition, Record]:
    """The record at the committed offset of every partition with pending letters."""
    start = {
        TopicPartition(t, p): committed.get(t, {}).get(p, 0)
        for t, ends in hws.items()
        for p, end in ends.items()
        if committed.get(t, {}).get(p, 0) < end
    }
    if not start:
        return {}
    consumer = make_consumer(kafka, group_id=None, client_id="streamcrawl-dlq", max_poll_records=len(start))
    await consumer.start()
    await asyncio.sleep(0)  # aiokafka's stop() right after start() raises CancelledError otherwise
    heads: dict[TopicPartition, Record] = {}
    try:
        consumer.assign(list(start))
        for tp, offset in start.items():
            consumer.seek(tp, offset)
        for _ in range(10):  # a few polls, ~5 s at most
            missing = [tp for tp in start if tp not in heads]
            if not missing:
                break
            batch = await consumer.getmany(*missing, timeout_ms=500, max_records=len(missing))
            for tp, records in batch.items():
                if records and tp not in heads:
                    heads[tp] = records[0]
                    consumer.pause(tp)
    finally:
        await consumer.stop()
    return heads


async def replay_state(
    kafka: KafkaSettings, topic: Topic, *, policy: ReplayPolicy, clock: Callable[[], float] = time.time
) -> ReplayState:
    """:func:`replay_states` of one DLQ."""
    return (await replay_states(kafka, [topic], policy=policy, clock=clock))[topic]
