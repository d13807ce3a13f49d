"""Handling suspects one at a time (per partition), and a suspect of a death all alone.

After a previous owner of a partition died (see workers/lifecycle/crashes.py), the
records it may have had in flight are queued in an ``Isolation`` and handled one after
another, while the partition's later records flow as usual. A record the last death is
blamed on is handled under the ``Gate``'s exclusive side: nothing else in the process is
handled meanwhile, so if the process dies again, that record did it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

__all__ = ["Gate", "Isolation"]

T = TypeVar("T")


class Gate:
    """Many shared holders, or one exclusive holder once the shared ones have left."""

    def __init__(self) -> None:
        self._shared = 0
        self._closed = False
        self._cond = asyncio.Condition()
        self._exclusive = asyncio.Lock()

    @property
    def closed(self) -> bool:
        return self._closed

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._cond:
            await self._cond.wait_for(lambda: not self._closed)
            self._shared += 1
        try:
            yield
        finally:
            async with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        async with self._exclusive:
            async with self._cond:
                self._closed = True
                try:
                    await self._cond.wait_for(lambda: self._shared == 0)
                except BaseException:
                    self._closed = False
                    self._cond.notify_all()
                    raise
            try:
                yield
            finally:
                async with self._cond:
                    self._closed = False
                    self._cond.notify_all()


@dataclass(eq=False)
class Isolation(Generic[T]):
    """The suspects of one partition: offsets below ``until``, handled in order, one at a time."""

    until: int
    suspect: tuple[int, int] | None = None
    """``(offset, deaths)`` of the record the last death is blamed on."""
    queue: deque[T] = field(default_factory=deque)
    arrived_all: bool = False
    """Every record below ``until`` has been queued (or ``until`` was cut to the log end)."""
    _wake: asyncio.Event = field(default_factory=asyncio.Event)

    def deaths_of(self, offset: int) -> int:
        return self.suspect[1] if self.suspect is not None and self.suspect[0] == offset else 0

    def push(self, item: T, *, last: bool) -> None:
        self.queue.append(item)
        if last:
            self.arrived_all = True
        self._wake.set()

    def cut(self, until: int) -> None:
        """Nothing at or after ``until`` can have been in flight (it did not exist yet)."""
        if until < self.until:
            self.until = until

    def close(self) -> None:
        self.arrived_all = True
        self._wake.set()

    async def next(self) -> T | None:
        """The next suspect, waiting for it to be fetched; None once all were handled."""
        while not self.queue:
            if self.arrived_all:
                return None
            self._wake.clear()
            await self._wake.wait()
        return self.queue.popleft()
