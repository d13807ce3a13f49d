"""``GET /dead-letters``: what failed and why, read from the dead-letter topics themselves.

The DLQ topics are the record of every failure (stage, error class and message, attempt,
the failed record's origin); the ledger keeps only each URL's final error class. Letters are
read with :func:`workers.dlq.read_letters_after` (the reader the CLI's ``dlq`` and Dagster
use; nothing is committed), every topic at once, listed in registry order and oldest first per partition, and
filtered by ``stage``, ``batch`` and ``error_class``.

One page reads at most ``STREAMCRAWL_API_DEAD_LETTER_SCAN`` records (split between the
topics not yet read to their end), so its cost is bounded
whatever the topics hold; the cursor carries each topic's next offset per partition and the
topics already read to their end. A page may hold fewer than ``limit`` letters (even none)
with a ``next_cursor``: follow it until it is null. Each page opens Kafka consumers for the
topics it reads (~0.5 s here, the topics in parallel): this route is for triage, not polling.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aiokafka import ConsumerRecord

from workers.api.cursor import bad_cursor, decode_cursor, encode_cursor
from workers.api.models import DeadLetterList, DeadLetterOut
from workers.dlq import read_letters_after
from workers.messages import DeadLetter
from workers.settings import KafkaSettings
from workers.topics import DLQ_TOPICS, STAGES, Stage, Topic

__all__ = ["DeadLetterQuery", "list_dead_letters", "topics_for"]

_Letter = tuple["ConsumerRecord[bytes, bytes]", DeadLetter]


@dataclass(frozen=True, slots=True)
class DeadLetterQuery:
    stage: Stage | None = None
    batch: str | None = None
    error_class: str | None = None
    cursor: str | None = None
    limit: int = 20

    def matches(self, letter: DeadLetter) -> bool:
        return (
            (self.stage is None or letter.stage == self.stage.value)
            and (self.batch is None or letter.batch == self.batch)
            and (self.error_class is None or letter.error_class == self.error_class)
        )


def topics_for(stage: Stage | None) -> tuple[Topic, ...]:
    """The DLQ topics a stage's letters land in (all of them without a stage)."""
    return DLQ_TOPICS if stage is None else (STAGES[stage].dlq,)


def _decode(cursor: str | None, topics: Sequence[Topic]) -> tuple[dict[str, dict[int, int]], set[str]]:
    if cursor is None:
        return {}, set()
    state, done = decode_cursor(cursor, "dlq", (dict, list))
    names = {t.name for t in topics}
    positions: dict[str, dict[int, int]] = {}
    try:
        for topic, parts in state.items():
            if topic not in names or not isinstance(parts, dict):
                raise ValueError(topic)
            positions[topic] = {int(p): int(o) for p, o in parts.items()}
            if any(p < 0 or o < 0 for p, o in positions[topic].items()):
                raise ValueError(topic)
    except (TypeError, ValueError):
        raise bad_cursor("dlq") from None
    if not all(isinstance(t, str) and t in names for t in done):
        raise bad_cursor("dlq")
    return positions, set(done)


def _out(topic: Topic, record: ConsumerRecord[bytes, bytes], letter: DeadLetter) -> DeadLetterOut:
    return DeadLetterOut(
        dlq=topic.name,
        partition=record.partition,
        offset=record.offset,
        stage=letter.stage,
        error_class=letter.error_class,
        error=letter.error_message,
        attempt=letter.attempt,
        url=letter.url,
        url_hash=letter.url_hash,
        batch=letter.batch,
        source=f"{letter.source_topic}[{letter.partition}]@{letter.offset}",
        first_failure_at=datetime.fromtimestamp(letter.first_failure_at, UTC),
        last_failure_at=datetime.fromtimestamp(letter.last_failure_at, UTC),
    )


async def list_dead_letters(kafka: KafkaSettings, query: DeadLetterQuery, *, scan: int) -> DeadLetterList:
    topics = topics_for(query.stage)
    positions, done = _decode(query.cursor, topics)
    todo = [t for t in topics if t.name not in done]
    per_topic = max(1, scan // max(1, len(todo)))
    reads = await asyncio.gather(
        *(read_letters_after(kafka, t, positions=positions.get(t.name, {}), limit=per_topic) for t in todo)
    )
    # Registry order of topics, offset order within each partition (as read).
    matched: list[tuple[Topic, _Letter]] = []
    scanned = 0
    for topic, (letters, after) in zip(todo, reads, strict=True):
        scanned += len(letters)
        matched += [(topic, (r, letter)) for r, letter in letters if query.matches(letter)]
        positions[topic.name] = after
        if len(letters) < per_topic:
            done.add(topic.name)  # read up to the log end seen when the read began
    for topic, (record, _letter) in matched[query.limit :]:
        # Left for the next page: its partition resumes at the first letter not returned.
        done.discard(topic.name)
        after = positions[topic.name]
        after[record.partition] = min(after.get(record.partition, record.offset), record.offset)
    items = [_out(topic, r, letter) for topic, (r, letter) in matched[: query.limit]]
    finished = all(t.name in done for t in topics)
    state: dict[str, Any] = {t: {str(p): o for p, o in parts.items()} for t, parts in positions.items()}
    return DeadLetterList(
        items=items,
        next_cursor=None if finished else encode_cursor("dlq", [state, sorted(done)]),
        limit=query.limit,
        scanned=scanned,
    )
