"""Running a dead owner's suspects: one at a time per partition, a blamed one alone.

Mixed into ``Worker``. The evidence (leases, isolation markers) is workers/lifecycle/crashes.py;
the queue and the gate are workers/lifecycle/isolation.py. Each suspect is committed before
the next one starts, because a marker only blames a record whose commit is still behind it.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, ClassVar

from aiokafka import TopicPartition

from workers.errors import DependencyUnavailable, WorkerCrashed
from workers.lifecycle.crashes import CrashMarkers
from workers.lifecycle.isolation import Gate, Isolation
from workers.lifecycle.offsets import OffsetTracker
from workers.observability.metrics import ISOLATED_RECORDS
from workers.settings import Settings
from workers.topics import Stage

if TYPE_CHECKING:
    from workers.lifecycle.worker import Incoming

__all__ = ["SuspectHandling"]


class SuspectHandling(abc.ABC):
    stage: ClassVar[Stage]
    settings: Settings
    _gate: Gate
    _markers: CrashMarkers | None
    _tracker: OffsetTracker[TopicPartition]
    _isolations: dict[TopicPartition, Isolation[Incoming]]

    @abc.abstractmethod
    def _spawn(self, tp: TopicPartition, coro: Coroutine[Any, Any, None], *, records: int = 0) -> None: ...

    @abc.abstractmethod
    def _finished(self, records: int) -> None: ...

    @abc.abstractmethod
    async def _execute(self, batch: list[Incoming]) -> None: ...

    @abc.abstractmethod
    async def _commit(
        self, tps: set[TopicPartition] | None = None, *, timeout_s: float | None = None
    ) -> bool: ...

    @abc.abstractmethod
    async def _wait_out_outage(self, outages: int, exc: DependencyUnavailable) -> None: ...

    @abc.abstractmethod
    async def dead_letter(self, item: Incoming, exc: BaseException, *, first_failure_at: float) -> None: ...

    def _start_isolation(self, tp: TopicPartition, iso: Isolation[Incoming]) -> None:
        self._spawn(tp, self._isolate(tp, iso))

    async def _isolate(self, tp: TopicPartition, iso: Isolation[Incoming]) -> None:
        """Handle a dead owner's suspects one at a time; a blamed one alone in the process."""
        markers = self._markers
        assert markers is not None
        try:
            while (item := await iso.next()) is not None:
                try:
                    await self._isolate_one(markers, tp, iso, item)
                finally:
                    self._finished(1)
        finally:
            self._abandon(iso)
            if self._isolations.get(tp) is iso:
                del self._isolations[tp]

    async def _isolate_one(
        self, markers: CrashMarkers, tp: TopicPartition, iso: Isolation[Incoming], item: Incoming
    ) -> None:
        offset = item.record.offset
        deaths = iso.deaths_of(offset)
        ISOLATED_RECORDS.labels(self.stage.value).inc()
        if deaths >= self.settings.worker.max_crashes:
            exc = WorkerCrashed(
                f"the {self.stage.value} process died {deaths} times while handling this record"
            )
            item.attempt = max(item.attempt, deaths)
            await self.dead_letter(item, exc, first_failure_at=time.time())
            self._tracker.done(tp, offset)
        else:
            async with self._gate.exclusive() if deaths else self._gate.shared():
                await self._write_isolation_marker(markers, tp, offset, deaths)
                await self._execute([item])
        # Commit before the next suspect: a marker is only evidence while the commit is behind it.
        await self._commit_until_done(tp)

    async def _commit_until_done(self, tp: TopicPartition) -> None:
        outages = 0
        while not await self._commit({tp}):
            outages += 1
            await self._wait_out_outage(
                outages, DependencyUnavailable(f"commit of {tp.topic}[{tp.partition}]")
            )

    def _abandon(self, iso: Isolation[Incoming]) -> None:
        """Queued suspects that will not be handled here leave the in-flight count (uncommitted)."""
        left = len(iso.queue)
        iso.queue.clear()
        iso.close()
        if left:
            self._finished(left)

    async def _write_isolation_marker(
        self, markers: CrashMarkers, tp: TopicPartition, offset: int, deaths: int
    ) -> None:
        outages = 0
        while True:
            try:
                await markers.mark_isolated(tp, offset, deaths)
                return
            except DependencyUnavailable as exc:
                outages += 1
                await self._wait_out_outage(outages, exc)
