"""Keep the number of requests in flight at what the event loop can actually serve.

A request in flight costs the event loop work at every step (connect, send, headers, each
body chunk, digest hand-off). When more requests are in flight than the loop can turn
around — a busy or CPU-starved machine — every step of every request waits behind the
others, and requests time out although the servers answered in time: our saturation
becomes the sites' "timeouts", then open breakers, then dead letters (the 20,000-URL crawl
of issue 9 lost 22% that way). Little's law says why a fixed limit cannot be right: the
loop serves X pages/s (~2,000/s per free core at ~0.5 ms CPU per page, far fewer when the
core is shared), so N requests in flight each wait about N / X seconds for the loop alone.
500 in flight is 0.25 s on a free core and several seconds on a starved one.

So the limit adapts to the loop's measured responsiveness, as crawlee's AutoscaledPool
does: :class:`LoadGovernor` schedules a callback every ``interval_s`` and measures how late
it runs (the event-loop lag: time spent on other callbacks or with the process not
scheduled at all). Every ``adjust_s``:

* the worst lag of the period above ``target_lag_s`` → the limit shrinks by a fifth
  (not below ``minimum``);
* the worst lag below half the target while the limit is nearly used up → it grows by a
  twentieth (not above ``maximum``, the ``concurrency`` setting).

Requests beyond the limit wait in FIFO order for a place (:class:`AdaptiveLimit`) before
their timeouts start, so waiting costs nothing but time. :meth:`LoadGovernor.overloaded_since`
tells whether the loop lagged during a request: a timeout then is our fault, not the
host's, and does not count against the host's circuit breaker.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

__all__ = ["AdaptiveLimit", "LoadGovernor"]


class AdaptiveLimit:
    """A FIFO semaphore whose size can change while it is in use."""

    def __init__(self, limit: int) -> None:
        self._limit = max(1, limit)
        self._used = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    @property
    def limit(self) -> int:
        return self._limit

    @limit.setter
    def limit(self, value: int) -> None:
        self._limit = max(1, value)
        self._wake()

    @property
    def used(self) -> int:
        return self._used

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def acquire(self) -> None:
        if self._used < self._limit and not self._waiters:
            self._used += 1
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release()  # granted just as we were cancelled: hand the place on
            elif future in self._waiters:  # a release meanwhile may have skipped (and popped) it
                self._waiters.remove(future)
            raise

    def release(self) -> None:
        self._used -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._used < self._limit:
            future = self._waiters.popleft()
            if not future.done():
                self._used += 1
                future.set_result(None)


class LoadGovernor:
    """Measures event-loop lag and sizes :attr:`limit` by it (see the module docstring)."""

    def __init__(
        self,
        *,
        maximum: int,
        minimum: int = 10,
        target_lag_s: float = 0.1,
        interval_s: float = 0.05,
        adjust_s: float = 0.5,
        on_adjust: Callable[[int, float], None] | None = None,
    ) -> None:
        self.limit = AdaptiveLimit(maximum)
        self.maximum = max(1, maximum)
        self.minimum = max(1, min(minimum, self.maximum))
        self.target_lag_s = target_lag_s
        self._interval = interval_s
        self._adjust = adjust_s
        self.on_adjust = on_adjust
        """Called with (new limit, lag) whenever the limit changes."""
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._due = 0.0
        self._period_end = 0.0
        self._period_lag = 0.0
        self.lag = 0.0
        """Worst lag of the last full period, seconds."""
        self.overloaded_at = float("-inf")
        """Loop time of the last tick that ran more than ``target_lag_s`` late."""

    def start(self) -> None:
        """Start measuring (call from the event loop); idempotent."""
        if self._handle is not None or self.target_lag_s <= 0:
            return
        self._loop = asyncio.get_running_loop()
        now = self._loop.time()
        self._period_end = now + self._adjust
        self._schedule(now)

    def stop(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def overloaded_since(self, loop_time: float) -> bool:
        """True if the loop lagged beyond the target at or after ``loop_time`` (``loop.time()``)."""
        return self.overloaded_at >= loop_time - self._interval

    def _schedule(self, now: float) -> None:
        assert self._loop is not None
        self._due = now + self._interval
        self._handle = self._loop.call_at(self._due, self._tick)

    def _tick(self) -> None:
        assert self._loop is not None
        now = self._loop.time()
        lag = max(0.0, now - self._due)
        if lag > self.target_lag_s:
            self.overloaded_at = now
        self._period_lag = max(self._period_lag, lag)
        if now >= self._period_end:
            self._resize(self._period_lag)
            self.lag, self._period_lag = self._period_lag, 0.0
            self._period_end = now + self._adjust
        self._schedule(now)

    def _resize(self, lag: float) -> None:
        limit = self.limit.limit
        if lag > self.target_lag_s:
            limit = max(self.minimum, int(limit * 0.8))
        elif lag < self.target_lag_s / 2 and self.limit.used >= limit * 0.9:
            limit = min(self.maximum, limit + max(1, limit // 20))
        if limit != self.limit.limit:
            self.limit.limit = limit
            if self.on_adjust is not None:
                self.on_adjust(limit, lag)
