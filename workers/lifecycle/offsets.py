"""Per-partition tracking of which offsets are fully handled, for at-least-once commits.

Records are handled concurrently and may finish out of order. The committable position of
a partition is the first offset that is not yet done: everything before it has been
produced downstream (acknowledged) or written, so committing it can never skip a record.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Generic, TypeVar

__all__ = ["OffsetTracker"]

TP = TypeVar("TP")


class _Partition:
    __slots__ = ("committed", "pending", "position")

    def __init__(self) -> None:
        self.pending: OrderedDict[int, bool] = OrderedDict()  # offset -> done, in dispatch order
        self.position: int | None = None  # next offset to commit
        self.committed: int | None = None  # last position handed out by committable()


class OffsetTracker(Generic[TP]):
    """Tracks dispatched and done offsets per topic-partition."""

    def __init__(self) -> None:
        self._parts: dict[TP, _Partition] = {}

    def dispatched(self, tp: TP, offset: int) -> None:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _Partition()
        part.pending[offset] = False

    def done(self, tp: TP, offset: int) -> None:
        part = self._parts.get(tp)
        if part is None or offset not in part.pending:
            return  # partition revoked meanwhile: its new owner re-handles the record
        part.pending[offset] = True
        while part.pending:
            first, finished = next(iter(part.pending.items()))
            if not finished:
                break
            part.pending.popitem(last=False)
            part.position = first + 1

    def in_flight(self) -> int:
        return sum(sum(1 for d in p.pending.values() if not d) for p in self._parts.values())

    def committable(self) -> dict[TP, int]:
        """Positions that moved since the last call (to pass to commit)."""
        out: dict[TP, int] = {}
        for tp, part in self._parts.items():
            if part.position is not None and part.position != part.committed:
                out[tp] = part.position
                part.committed = part.position
        return out

    def uncommit(self, positions: dict[TP, int]) -> None:
        """A commit failed: offer these positions again next time."""
        for tp in positions:
            part = self._parts.get(tp)
            if part is not None:
                part.committed = None

    def forget(self, tps: list[TP] | set[TP]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)
