"""Following one crawl batch through the pipeline by reading the topics it flows through.

Counts are of **distinct URL hashes** of the batch, so a redelivered record is never
counted twice. A URL is accounted for once it is stored (``storage.saved``) or
dead-lettered (any ``*.dlq``); stored wins when both happened (a retry that succeeded).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from aiokafka import TopicPartition

from workers.kafka import make_consumer
from workers.lag import high_watermarks
from workers.messages import DeadLetter, decode, peek
from workers.settings import KafkaSettings
from workers.topics import (
    DLQ_TOPICS,
    PROCESS_FAST,
    PROCESS_RICH,
    PROCESSED_FINAL,
    RAW_PAGE,
    STORAGE_SAVED,
    Topic,
)

__all__ = ["BatchProgress", "ProgressTracker"]

_WATCHED: tuple[Topic, ...] = (
    RAW_PAGE,
    PROCESS_FAST,
    PROCESS_RICH,
    PROCESSED_FINAL,
    STORAGE_SAVED,
    *DLQ_TOPICS,
)


@dataclass(slots=True)
class BatchProgress:
    requested: int
    started_at: float = field(default_factory=time.monotonic)
    seen: dict[str, set[str]] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    """url_hash -> "stage: ErrorClass: message" of its dead letter."""

    def _n(self, topic: Topic) -> int:
        return len(self.seen.get(topic.name, ()))

    @property
    def stored(self) -> int:
        return self._n(STORAGE_SAVED)

    @property
    def dead_lettered(self) -> int:
        stored = self.seen.get(STORAGE_SAVED.name, set())
        dead: set[str] = set()
        for topic in DLQ_TOPICS:
            dead |= self.seen.get(topic.name, set())
        return len(dead - stored)

    @property
    def accounted(self) -> int:
        return self.stored + self.dead_lettered

    @property
    def done(self) -> bool:
        return self.accounted >= self.requested

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started_at
        return self.accounted / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float | None:
        rate = self.rate()
        return (self.requested - self.accounted) / rate if rate > 0 else None

    def counts(self) -> dict[str, int]:
        return {
            "requested": self.requested,
            "fetched": self._n(RAW_PAGE),
            "fast": self._n(PROCESS_FAST),
            "rich": self._n(PROCESS_RICH),
            "processed": self._n(PROCESSED_FINAL),
            "stored": self.stored,
            "dead_lettered": self.dead_lettered,
        }

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "requested": self.requested,
            "stored": self.stored,
            "dead_lettered": self.dead_lettered,
            "lost": max(0, self.requested - self.accounted),
        }
        out.update({k: v for k, v in self.counts().items() if k not in out})
        out["elapsed_s"] = round(time.monotonic() - self.started_at, 2)
        return out


class ProgressTracker:
    """Reads the pipeline's topics from given start positions and counts one batch."""

    def __init__(self, settings: KafkaSettings, *, batch: str, requested: int) -> None:
        self.settings = settings
        self.batch = batch
        self.progress = BatchProgress(requested=requested)
        self._start: dict[str, dict[int, int]] = {}

    async def mark_start(self) -> None:
        """Remember the current log ends, so only records produced after now are read."""
        self._start = await high_watermarks(self.settings, _WATCHED)

    def _observe(self, topic: str, value: bytes | None) -> None:
        info = peek(value)
        if info.get("batch") != self.batch or "url_hash" not in info:
            return
        self.progress.seen.setdefault(topic, set()).add(info["url_hash"])
        if topic.endswith(".dlq"):
            try:
                letter = decode(value, DeadLetter)
            except Exception:  # noqa: BLE001 - a reason is best effort
                return
            self.progress.reasons[info["url_hash"]] = (
                f"{letter.stage}: {letter.error_class}: {letter.error_message}"
            )

    async def follow(self, *, timeout_s: float, on_tick: Any = None, tick_s: float = 0.5) -> BatchProgress:
        """Read until every URL is accounted for or ``timeout_s`` passes."""
        consumer = make_consumer(self.settings, group_id=None, client_id="streamcrawl-progress")
        try:
            await consumer.start()  # inside the try: a failed start must still close the client
            tps: list[TopicPartition] = []
            for topic in _WATCHED:
                for part in sorted(consumer.partitions_for_topic(topic.name) or ()):
                    tps.append(TopicPartition(topic.name, part))
            consumer.assign(tps)
            for tp in tps:
                consumer.seek(tp, self._start.get(tp.topic, {}).get(tp.partition, 0))
            deadline = time.monotonic() + timeout_s
            next_tick = 0.0
            while not self.progress.done and time.monotonic() < deadline:
                fetched = await consumer.getmany(timeout_ms=200, max_records=5000)
                for tp, records in fetched.items():
                    for record in records:
                        self._observe(tp.topic, record.value)
                if on_tick is not None and time.monotonic() >= next_tick:
                    on_tick(self.progress)
                    next_tick = time.monotonic() + tick_s
                await asyncio.sleep(0)
            if on_tick is not None:
                on_tick(self.progress)
        finally:
            await consumer.stop()
        return self.progress
