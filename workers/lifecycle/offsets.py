"""Per-partition tracking of which offsets are fully handled, for at-least-once commits.

Records are handled concurrently and may finish out of order. The committable position of
a partition is the first offset that is not yet done: everything before it has been
produced downstream (acknowledged) or written, so committing it can never skip a record.

On a rebalance the revoked partitions are *set aside* rather than dropped
(``revoke``): batches still running keep reporting ``done`` into them, and when the group
hands a partition straight back to this consumer (the usual case with eager rebalancing),
``restore`` resumes it where it was, so nothing that was already handled is handled again.
A partition that went to another consumer is ``discard``-ed.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["OffsetTracker", "PartitionState"]

TP = TypeVar("TP")


class PartitionState:
    """What one partition's owner knows: dispatched offsets, the commit position, timestamps."""

    __slots__ = ("committed", "dispatched_max", "pending", "position", "timestamps")

    def __init__(self) -> None:
        self.pending: OrderedDict[int, bool] = OrderedDict()  # offset -> done, in dispatch order
        self.timestamps: dict[int, int] = {}  # offset -> record timestamp (ms) while pending
        self.position: int | None = None  # next offset to commit
        self.committed: int | None = None  # last position handed out by committable()
        self.dispatched_max: int | None = None  # highest offset ever dispatched

    @property
    def in_flight(self) -> int:
        return sum(1 for done in self.pending.values() if not done)

    @property
    def next_offset(self) -> int | None:
        """The offset after the last dispatched one (where fetching resumes after a restore)."""
        return None if self.dispatched_max is None else self.dispatched_max + 1

    def oldest_pending_timestamp(self) -> int | None:
        """Timestamp (ms) of the first unfinished record: the oldest thing not yet committed."""
        for offset, done in self.pending.items():
            if not done:
                return self.timestamps.get(offset)
        return None


class OffsetTracker(Generic[TP]):
    """Tracks dispatched and done offsets per topic-partition."""

    def __init__(self) -> None:
        self._parts: dict[TP, PartitionState] = {}
        self._revoked: dict[TP, PartitionState] = {}
        self.finished = 0
        """Records finished since start (liveness counts progress with it)."""

    def dispatched(self, tp: TP, offset: int, timestamp: int | None = None) -> None:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = PartitionState()
        part.pending[offset] = False
        if timestamp is not None:
            part.timestamps[offset] = timestamp
        if part.dispatched_max is None or offset > part.dispatched_max:
            part.dispatched_max = offset

    def done(self, tp: TP, offset: int) -> None:
        part = self._parts.get(tp) or self._revoked.get(tp)
        if part is None or offset not in part.pending:
            return  # partition given to another consumer meanwhile: its new owner re-handles it
        self.finished += 1
        part.pending[offset] = True
        part.timestamps.pop(offset, None)
        while part.pending:
            first, finished = next(iter(part.pending.items()))
            if not finished:
                break
            part.pending.popitem(last=False)
            part.position = first + 1

    def owns(self, tp: TP) -> bool:
        return tp in self._parts

    def state(self, tp: TP) -> PartitionState | None:
        return self._parts.get(tp)

    def partitions(self) -> list[TP]:
        return list(self._parts)

    def in_flight(self, tps: set[TP] | None = None) -> int:
        """Unfinished records of the owned partitions (of ``tps`` only, when given, revoked ones too)."""
        if tps is None:
            return sum(p.in_flight for p in self._parts.values())
        parts = [self._parts.get(tp) or self._revoked.get(tp) for tp in tps]
        return sum(p.in_flight for p in parts if p is not None)

    def committable(self, tps: set[TP] | None = None) -> dict[TP, int]:
        """Positions that moved since the last call (to pass to commit)."""
        out: dict[TP, int] = {}
        for tp, part in self._parts.items():
            if tps is not None and tp not in tps:
                continue
            if part.position is not None and part.position != part.committed:
                out[tp] = part.position
                part.committed = part.position
        return out

    def uncommit(self, positions: dict[TP, int]) -> None:
        """A commit failed: offer these positions again next time."""
        for tp in positions:
            part = self._parts.get(tp) or self._revoked.get(tp)
            if part is not None:
                part.committed = None

    def revoke(self, tps: set[TP] | list[TP]) -> None:
        """Set partitions aside: not committable, still told when their running records finish."""
        for tp in tps:
            part = self._parts.pop(tp, None)
            if part is not None:
                self._revoked[tp] = part

    def restore(self, tp: TP) -> PartitionState | None:
        """Take a revoked partition back (it was re-assigned to us); None if it was not set aside."""
        part = self._revoked.pop(tp, None)
        if part is not None:
            self._parts[tp] = part
        return part

    def revoked(self) -> list[TP]:
        return list(self._revoked)

    def revoked_state(self, tp: TP) -> PartitionState | None:
        return self._revoked.get(tp)

    def discard(self, tps: set[TP] | list[TP]) -> None:
        """Forget partitions for good (owned or set aside)."""
        for tp in tps:
            self._parts.pop(tp, None)
            self._revoked.pop(tp, None)
