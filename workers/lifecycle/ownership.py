"""Owning partitions: commits, leases, and hand-overs on rebalance.

* **Commit** — the first unfinished offset of each partition, every commit interval, on
  revocation and on shutdown; a commit never blocks longer than the request timeout.
* **Lease** — before records are handed to the stage, their partition's lease is moved
  beyond them (workers/lifecycle/crashes.py), so a successor can tell what was in flight.
* **Revocation** — the revoked partitions stop taking new records; their in-flight
  records get ``STREAMCRAWL_WORKER_REVOKE_WAIT_S`` to finish, then what is done is
  committed and, if nothing is left in flight, the lease is released (a clean hand-over).
  The partitions are set aside, not dropped: with eager rebalancing most come straight
  back, and a partition that comes back to us unchanged (nobody committed meanwhile)
  resumes where it was — records already handled are not fetched again. A partition
  that went to another consumer is dropped and its leftover work cancelled.
* **Assignment** — a partition whose previous owner died (lease beyond the commit) gets a
  recovery round: its suspects are handled again as usual, under a round marker. If the
  owner before had died during such a round (or while isolating), the partition gets an
  ``Isolation`` instead: its suspects are handled one at a time (workers/lifecycle/isolation.py).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from workers.errors import DependencyUnavailable
from workers.lifecycle.crashes import CrashMarkers, Recovery
from workers.lifecycle.isolation import Isolation
from workers.lifecycle.offsets import OffsetTracker
from workers.lifecycle.retry import backoff_delay
from workers.lifecycle.suspects import SuspectHandling
from workers.settings import Settings
from workers.topics import StageTopics

if TYPE_CHECKING:
    from workers.lifecycle.worker import Incoming

__all__ = ["PartitionOwnership", "RebalanceListener"]

log = logging.getLogger("workers.lifecycle.worker")

_READ_ATTEMPTS = 3


class PartitionOwnership(SuspectHandling):
    """Mixed into ``Worker``: the state of the partitions it holds, and how they change hands."""

    settings: Settings
    topics: StageTopics
    batch_size: int
    _stopping: asyncio.Event
    _consumer: AIOKafkaConsumer | None
    _markers: CrashMarkers | None
    _tracker: OffsetTracker[TopicPartition]

    def _init_ownership(self) -> None:
        self._owned: set[TopicPartition] = set()
        self._leases: dict[TopicPartition, int] = {}
        self._committed: dict[TopicPartition, int | None] = {}
        self._isolations: dict[TopicPartition, Isolation[Incoming]] = {}
        self._rounds: dict[TopicPartition, int] = {}
        """Recovery rounds under way: partition -> the offset the round ends at."""
        self._tasks_by_tp: dict[TopicPartition, set[asyncio.Task[Any]]] = {}
        self._progressed = asyncio.Event()
        self._lease_lock = asyncio.Lock()

    @property
    def _timeout_s(self) -> float:
        return max(1.0, self.settings.kafka.request_timeout_ms / 1000)

    def _track_task(self, tp: TopicPartition, task: asyncio.Task[Any]) -> None:
        tasks = self._tasks_by_tp.setdefault(tp, set())
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    # ----------------------------------------------------------------- commits
    async def _commit(
        self, tps: set[TopicPartition] | None = None, *, timeout_s: float | None = None
    ) -> bool:
        """Commit what is done; False when the broker did not take it (offered again next time)."""
        consumer = self._consumer
        if consumer is None:
            return True
        positions = self._tracker.committable(tps)
        if not positions:
            return True
        try:
            await asyncio.wait_for(
                consumer.commit({tp: OffsetAndMetadata(pos, "") for tp, pos in positions.items()}),
                self._timeout_s if timeout_s is None else timeout_s,
            )
        except (KafkaError, TimeoutError) as exc:
            log.warning("commit failed (will retry): %r", exc)
            self._tracker.uncommit(positions)
            return False
        self._committed.update(positions)
        if self._rounds:
            await self._end_rounds()
        return True

    async def _end_rounds(self) -> None:
        """Clear the round markers of partitions whose commit passed the round's end."""
        ended = {tp for tp, until in self._rounds.items() if (self._committed.get(tp) or 0) >= until}
        if not ended or self._markers is None:
            return
        try:
            await self._markers.clear_isolation(ended)
        except DependencyUnavailable as exc:  # tried again at the next commit
            log.debug("could not clear round markers yet: %s", exc)
            return
        for tp in ended:
            self._rounds.pop(tp, None)

    def _position(self, tp: TopicPartition) -> int | None:
        part = self._tracker.state(tp) or self._tracker.revoked_state(tp)
        if part is not None and part.position is not None:
            return part.position
        return self._committed.get(tp)

    async def _release(self, tps: set[TopicPartition], *, force: bool = False) -> None:
        """Clean hand-over: lease back to the commit, for partitions with nothing in flight
        (``force``: all of them — a clean shutdown's cancelled records are not suspects)."""
        markers = self._markers
        clean = {tp: pos for tp in tps if (pos := self._committed.get(tp)) is not None}
        if not force:
            clean = {tp: pos for tp, pos in clean.items() if self._tracker.in_flight({tp}) == 0}
        if markers is None or not clean:
            return
        async with self._lease_lock:
            try:
                await markers.release(clean)
            except DependencyUnavailable as exc:
                log.warning("could not release leases (the next owner will isolate them): %s", exc)
                return
            self._leases.update(clean)

    # ------------------------------------------------------------------ leases
    async def _ensure_leases(self, fetched: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]) -> bool:
        """Move leases beyond the fetched records before they are handled; False when stopping."""
        markers = self._markers
        if markers is None:
            return True
        headroom = max(4 * self.batch_size, 200)
        outages = 0
        async with self._lease_lock:
            while True:
                need = {
                    tp: records[-1].offset + 1 + headroom
                    for tp, records in fetched.items()
                    if tp in self._owned and records[-1].offset >= self._leases.get(tp, -1)
                }
                if not need:
                    return True
                try:
                    await markers.set_leases(need)
                except DependencyUnavailable as exc:
                    if self._stopping.is_set():
                        return False
                    outages += 1
                    delay = backoff_delay(
                        min(outages, 8), base=0.2, cap=self.settings.worker.retry_max_delay_s
                    )
                    log.warning("%s; retrying in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
                    continue
                self._leases.update(need)
                return True

    # --------------------------------------------------------------- rebalance
    def _pause(self, tps: set[TopicPartition]) -> None:
        if self._consumer is not None and tps:
            self._consumer.pause(*tps)

    async def _on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._pause(revoked)  # nothing more of them is fetched while their in-flight records finish
        self._owned -= revoked
        # Shutting down, the drain already decides what finishes: waiting here again would
        # only hold up the group's rebalance (and the exit) with records that were cancelled.
        wait_s = 0.0 if self._stopping.is_set() else self.settings.worker.revoke_wait_s
        deadline = time.monotonic() + wait_s
        while self._tracker.in_flight(revoked) > 0 and (left := deadline - time.monotonic()) > 0:
            self._progressed.clear()
            try:
                await asyncio.wait_for(self._progressed.wait(), left)
            except TimeoutError:
                break
        left_over = self._tracker.in_flight(revoked)
        if left_over and wait_s:
            log.warning(
                "revocation: %d records still in flight after %.0f s",
                left_over,
                self.settings.worker.revoke_wait_s,
            )
        await self._commit(revoked)
        await self._release(revoked)
        self._tracker.revoke(revoked)

    async def _on_assigned(self, assigned: set[TopicPartition]) -> None:
        # Fetching starts while this listener awaits the markers; paused, no record of these
        # partitions is handed out before we know whether their previous owner died.
        self._pause(assigned)
        try:
            await self._take_over(assigned)
        finally:
            if self._consumer is not None and assigned:
                self._consumer.resume(*(assigned & self._consumer.assignment()))

    async def _take_over(self, assigned: set[TopicPartition]) -> None:
        for tp in set(self._tracker.revoked()) - assigned:
            self._drop(tp)
        recoveries = await self._read_recoveries(assigned)
        resumed = 0
        isolate: dict[TopicPartition, Recovery] = {}
        rounds: dict[TopicPartition, Recovery] = {}
        for tp in sorted(assigned):
            recovery = recoveries.get(tp)
            if self._resume(tp, recovery):
                resumed += 1
                continue
            self._drop(tp)
            self._committed[tp] = recovery.committed if recovery else None
            self._leases[tp] = recovery.lease if recovery and recovery.lease is not None else -1
            if recovery is not None and recovery.suspects_until is not None:
                (isolate if recovery.isolate else rounds)[tp] = recovery
        if rounds and not await self._begin_rounds(rounds):
            isolate.update(rounds)  # no marker, no round: the safe way instead
        for tp in sorted(isolate):
            recovery = isolate[tp]
            until = recovery.suspects_until
            assert until is not None
            iso: Isolation[Incoming] = Isolation(until=until, suspect=recovery.suspect)
            self._isolations[tp] = iso
            log.warning(
                "%s[%d]: the previous owner died with offsets %s..%d in flight%s; handling them one at a time%s",
                tp.topic,
                tp.partition,
                recovery.committed if recovery.committed is not None else "start",
                until - 1,
                " during a recovery round" if recovery.in_round else "",
                f" (offset {recovery.suspect[0]} blamed for {recovery.suspect[1]} deaths)"
                if recovery.suspect
                else "",
            )
            self._start_isolation(tp, iso)
        self._owned |= assigned
        log.info(
            "assigned %d partitions of %s (%d resumed where they were)",
            len(assigned),
            ", ".join(sorted({tp.topic for tp in assigned})) or "-",
            resumed,
        )

    async def _begin_rounds(self, rounds: dict[TopicPartition, Recovery]) -> bool:
        """Mark recovery rounds for the suspects of a first death; False if the marker could not be written."""
        markers = self._markers
        assert markers is not None
        ends = {tp: r.suspects_until for tp, r in rounds.items() if r.suspects_until is not None}
        try:
            await markers.mark_rounds(ends)
        except DependencyUnavailable as exc:
            log.warning("could not mark recovery rounds (isolating instead): %s", exc)
            return False
        self._rounds.update(ends)
        for tp in sorted(rounds):
            log.warning(
                "%s[%d]: the previous owner died with offsets %s..%d in flight; handling them again as "
                "usual (one at a time only if this process dies before they are done)",
                tp.topic,
                tp.partition,
                rounds[tp].committed if rounds[tp].committed is not None else "start",
                ends[tp] - 1,
            )
        return True

    def _resume(self, tp: TopicPartition, recovery: Recovery | None) -> bool:
        """Take back a partition set aside at revocation if nobody else committed meanwhile."""
        part = self._tracker.revoked_state(tp)
        if part is None or recovery is None or recovery.committed != self._committed.get(tp):
            return False
        self._tracker.restore(tp)
        if part.next_offset is not None and self._consumer is not None:
            self._consumer.seek(tp, part.next_offset)
        return True

    def _drop(self, tp: TopicPartition) -> None:
        """Forget a partition and cancel whatever of it is still running."""
        self._tracker.discard({tp})
        self._rounds.pop(tp, None)  # its marker stays: the next owner isolates what is left
        iso = self._isolations.pop(tp, None)
        if iso is not None:
            self._abandon(iso)
        for task in list(self._tasks_by_tp.pop(tp, ())):
            task.cancel()

    async def _read_recoveries(self, tps: set[TopicPartition]) -> dict[TopicPartition, Recovery]:
        markers = self._markers
        if markers is None or not tps:
            return {}
        for attempt in range(1, _READ_ATTEMPTS + 1):
            try:
                return await markers.read(tps)
            except DependencyUnavailable as exc:
                log.warning("reading in-flight markers failed (attempt %d): %s", attempt, exc)
                await asyncio.sleep(0.5 * attempt)
        log.error("in-flight markers unreadable: crashes of earlier owners go unnoticed this time")
        return {}


class RebalanceListener(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, owner: PartitionOwnership) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Sequence[TopicPartition]) -> None:
        await self.owner._on_revoked(set(revoked))

    async def on_partitions_assigned(self, assigned: Sequence[TopicPartition]) -> None:
        await self.owner._on_assigned(set(assigned))
