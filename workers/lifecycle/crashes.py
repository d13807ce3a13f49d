"""Attempts that survive a crash, kept in Kafka itself: leases and isolation markers.

The lifecycle has no database of its own, so it keeps what a crash must not forget in
the committed offsets of two *shadow* consumer groups per stage (nobody consumes with
them; they are only committed to, which Apache Kafka and Tansu both allow for a group
without members). Commit *metadata* would be the natural place, but Tansu drops it.

* **lease** (``<group>.lease``): before a worker hands a record to its stage it makes
  sure the lease of the record's partition lies beyond the record's offset (extending it
  by a headroom, one commit for many records). So ``[committed, lease)`` bounds every
  record a worker may have been handling. A clean stop or hand-over sets the lease back
  to the committed offset (empty range). A new owner that finds ``lease > committed``
  knows the previous one died with those records in flight: the *suspects*.
* **recovery round** — a new owner that finds ``lease > committed`` (and no marker of
  an earlier recovery) handles the suspects again *as usual*, at full concurrency, after
  committing a round marker ``encode_isolation(lease, ROUND)`` on ``<group>.isolation``.
  Most deaths are not a record's fault (a lost host, an OOM kill of a busy process, kill
  -9), so the common recovery costs nothing. The marker is cleared once the commit passes
  the round's end.
* **isolation** (``<group>.isolation``): if the process dies again before the round is
  over, the next owner finds the round marker and handles the suspects one at a time per
  partition. Before each, the worker commits ``encode_isolation(offset, crashes)`` — the
  record and how many deaths it is already blamed for. If the process dies again, the
  next owner finds the marker naming a record at or after the committed offset: that
  record was being handled when the process died. It is then handled *alone* (nothing
  else in flight in the process), so a further death is certainly its fault; after
  ``max_crashes`` deaths it is dead-lettered as ``WorkerCrashed`` instead of handled.

Neither the first death (which of the records in flight caused it is unknown) nor the
death during the recovery round is blamed on a record; a record is dead-lettered after
``max_crashes`` deaths that happened while it was isolated, the last ``max_crashes - 1``
of them while it was the only record in flight. A killer record so costs
``max_crashes + 2`` deaths; a host lost once costs its successor no isolation at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from workers.errors import DependencyUnavailable
from workers.kafka import make_admin, make_consumer
from workers.settings import KafkaSettings
from workers.topics import StageTopics

__all__ = ["ROUND", "CrashMarkers", "Recovery", "decode_isolation", "encode_isolation"]

log = logging.getLogger(__name__)

_CRASH_BITS = 6
ROUND = (1 << _CRASH_BITS) - 1
"""The ``crashes`` value of a round marker: ``offset`` is then the end of the recovery round."""


def encode_isolation(offset: int, crashes: int) -> int:
    """One committed offset naming ``offset`` and the deaths it is blamed for (0 = no marker);
    ``crashes=ROUND`` marks a recovery round over the suspects below ``offset``."""
    return ((offset + 1) << _CRASH_BITS) | min(max(crashes, 0), ROUND)


def decode_isolation(value: int | None) -> tuple[int, int] | None:
    """``(offset, crashes)`` of a marker, or None for no marker."""
    if value is None or value <= 0:
        return None
    offset = (value >> _CRASH_BITS) - 1
    return (offset, value & ROUND) if offset >= 0 else None


@dataclass(frozen=True, slots=True)
class Recovery:
    """What the previous owner of a partition left behind, read when it is assigned."""

    committed: int | None
    lease: int | None
    isolated: tuple[int, int] | None = None

    @property
    def unclean(self) -> bool:
        """The previous owner died with records in flight (its lease lies beyond the commit)."""
        return self.lease is not None and self.lease > (self.committed or 0)

    @property
    def suspects_until(self) -> int | None:
        """Offsets below this (and at or after the committed one) are handled one at a time."""
        return self.lease if self.unclean else None

    @property
    def in_round(self) -> bool:
        """The previous owner died during a recovery round that had not ended."""
        if not self.unclean or self.isolated is None:
            return False
        until, crashes = self.isolated
        return crashes == ROUND and (self.committed or 0) < until

    @property
    def isolate(self) -> bool:
        """Handle the suspects one at a time: this is not the first death in a row."""
        return self.in_round or self.suspect is not None

    @property
    def suspect(self) -> tuple[int, int] | None:
        """``(offset, deaths)`` of the record that was isolated when the process last died."""
        if not self.unclean or self.isolated is None:
            return None
        offset, crashes = self.isolated
        if crashes == ROUND:
            return None
        if offset < (self.committed or 0) or self.lease is None or offset >= self.lease:
            return None  # stale: that record was finished since
        return offset, crashes + 1


class CrashMarkers:
    """Reads and writes a stage's lease and isolation markers (see the module doc)."""

    def __init__(
        self, kafka: KafkaSettings, topics: StageTopics, *, client_id: str, timeout_s: float = 10.0
    ) -> None:
        self.kafka = kafka
        self.topics = topics
        self.client_id = client_id
        self.timeout_s = timeout_s
        self._lease: AIOKafkaConsumer | None = None
        self._isolation: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None

    async def start(self) -> None:
        self._lease = await self._shadow(self.topics.lease_group)
        self._isolation = await self._shadow(self.topics.isolation_group)
        self._admin = make_admin(self.kafka, client_id=f"{self.client_id}-markers")
        await self._admin.start()

    async def _shadow(self, group: str) -> AIOKafkaConsumer:
        consumer = make_consumer(self.kafka, group_id=group, client_id=f"{self.client_id}-markers")
        await consumer.start()
        return consumer

    async def stop(self, *, timeout_s: float = 1.0) -> None:
        for consumer in (self._lease, self._isolation):
            if consumer is not None:
                with contextlib.suppress(KafkaError, OSError, TimeoutError):
                    await asyncio.wait_for(consumer.stop(), timeout_s)
        if self._admin is not None:
            with contextlib.suppress(KafkaError, OSError, TimeoutError):
                await asyncio.wait_for(self._admin.close(), timeout_s)

    async def read(self, tps: Iterable[TopicPartition]) -> dict[TopicPartition, Recovery]:
        """The main group's committed offsets with both markers, for ``tps``."""
        wanted = list(tps)
        if not wanted:
            return {}
        main, lease, isolation = await asyncio.gather(
            self._offsets(self.topics.group, wanted),
            self._offsets(self.topics.lease_group, wanted),
            self._offsets(self.topics.isolation_group, wanted),
        )
        return {
            tp: Recovery(
                committed=main.get(tp),
                lease=lease.get(tp),
                isolated=decode_isolation(isolation.get(tp)),
            )
            for tp in wanted
        }

    async def _offsets(self, group: str, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
        admin = self._admin
        assert admin is not None
        try:
            # Partitions passed explicitly: without them aiokafka fails to decode Tansu's answer.
            found = await asyncio.wait_for(
                admin.list_consumer_group_offsets(group, partitions=tps), self.timeout_s
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise DependencyUnavailable(f"reading offsets of {group} failed: {exc!r}") from exc
        return {tp: meta.offset for tp, meta in found.items() if meta.offset >= 0}

    async def set_leases(self, leases: dict[TopicPartition, int]) -> None:
        await self._commit(self._lease, leases)

    async def mark_isolated(self, tp: TopicPartition, offset: int, crashes: int) -> None:
        await self._commit(self._isolation, {tp: encode_isolation(offset, min(crashes, ROUND - 1))})

    async def mark_rounds(self, rounds: dict[TopicPartition, int]) -> None:
        """Recovery rounds begin: the suspects below each offset are handled as usual."""
        await self._commit(
            self._isolation, {tp: encode_isolation(until, ROUND) for tp, until in rounds.items()}
        )

    async def clear_isolation(self, tps: Iterable[TopicPartition]) -> None:
        """The recovery rounds of ``tps`` ended: a later death is a first one again."""
        await self._commit(self._isolation, dict.fromkeys(tps, 0))

    async def release(self, positions: dict[TopicPartition, int]) -> None:
        """A clean hand-over: nothing of these partitions is in flight any more."""
        await self._commit(self._lease, positions)
        await self._commit(self._isolation, dict.fromkeys(positions, 0))

    async def _commit(self, consumer: AIOKafkaConsumer | None, values: dict[TopicPartition, int]) -> None:
        if consumer is None or not values:
            return
        missing = set(values) - consumer.assignment()
        if missing:  # aiokafka commits only assigned partitions; these are only committed to, never fetched
            wanted = consumer.assignment() | missing
            consumer.assign(sorted(wanted))
            consumer.pause(*wanted)
        try:
            await asyncio.wait_for(
                consumer.commit({tp: OffsetAndMetadata(v, "") for tp, v in values.items()}),
                self.timeout_s,
            )
        except (KafkaError, OSError, TimeoutError) as exc:
            raise DependencyUnavailable(f"writing in-flight markers failed: {exc!r}") from exc
