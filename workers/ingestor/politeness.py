"""Per-host politeness and global concurrency: who may send a request, and when.

:meth:`HostScheduler.slot` is an async context manager around one request:

1. wait for one of the host's ``per_host_concurrency`` places (an ``asyncio.Semaphore``
   per host: waiters sleep on a future, nothing polls);
2. wait until ``delay`` seconds have passed since the host's last request *start*
   (``delay`` is per call: the fetcher passes ``max(per_host_delay_s, robots Crawl-delay)``)
   and past any Retry-After recorded with :meth:`HostScheduler.defer`;
3. take one of the ``concurrency`` global places, then re-check the host's clock (another
   request may have started while we waited for the global place) before starting.

A host waiting for its turn never holds a global place, so one slow or rate-limited host
cannot starve the others. Host state is created on first use and dropped once the host is
idle (no user, delay elapsed): a timer per idle host, so memory follows the hosts being
crawled right now, not every host ever seen. "Idle" waits for the largest spacing any
request may ask for (``max_delay_s``, the Crawl-delay cap): a host whose robots.txt asks
for a longer delay than the previous request used is still spaced correctly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["HostScheduler"]


class _Host:
    __slots__ = ("last_start", "not_before", "places", "spacing", "timer", "users")

    def __init__(self, places: int) -> None:
        self.places = asyncio.Semaphore(places)
        self.last_start = -1e9  # monotonic time of the last request start
        self.spacing = 0.0  # the spacing the last request asked for
        self.not_before = 0.0  # no start before this (a Retry-After)
        self.users = 0
        self.timer: asyncio.TimerHandle | None = None

    def ready_at(self, spacing: float) -> float:
        return max(self.last_start + spacing, self.not_before)

    def idle_at(self, linger: float) -> float:
        return self.ready_at(max(self.spacing, linger))


class _Slot:
    """The async context manager returned by :meth:`HostScheduler.slot` (a class, not a
    generator: it runs once per request)."""

    __slots__ = ("_host", "_scheduler", "_spacing", "_state")

    def __init__(self, scheduler: HostScheduler, host: str, spacing: float) -> None:
        self._scheduler = scheduler
        self._host = host
        self._spacing = spacing
        self._state: _Host | None = None

    async def __aenter__(self) -> float:
        self._state, waited = await self._scheduler._acquire(self._host, self._spacing)
        return waited

    async def __aexit__(self, *exc_info: object) -> None:
        if self._state is not None:
            state, self._state = self._state, None
            self._scheduler._release(self._host, state)


class HostScheduler:
    """Per-host concurrency and spacing plus a global concurrency limit."""

    def __init__(
        self,
        *,
        concurrency: int,
        per_host_concurrency: int,
        per_host_delay_s: float,
        max_delay_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._global = asyncio.Semaphore(concurrency)
        self._per_host = per_host_concurrency
        self.default_delay = per_host_delay_s
        # An idle host is kept until no later request could still have to wait for it.
        self._linger = max(per_host_delay_s, max_delay_s)
        self._clock = clock
        self._hosts: dict[str, _Host] = {}

    @property
    def hosts(self) -> int:
        """Hosts with live state (in use, or still inside their delay)."""
        return len(self._hosts)

    def slot(self, host: str, *, delay: float | None = None) -> _Slot:
        """``async with scheduler.slot(host) as waited:`` holds a place to send one request.

        ``waited`` is the seconds spent waiting for the turn.
        """
        return _Slot(self, host, self.default_delay if delay is None else delay)

    async def _acquire(self, host: str, spacing: float) -> tuple[_Host, float]:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(self._per_host)
        elif state.timer is not None:
            state.timer.cancel()
            state.timer = None
        state.users += 1
        entered = self._clock()
        try:
            await state.places.acquire()
            try:
                await self._wait_turn(state, spacing)
            except BaseException:
                state.places.release()
                raise
        except BaseException:
            self._leave(host, state)
            raise
        state.last_start = now = self._clock()
        state.spacing = spacing
        return state, now - entered

    def _release(self, host: str, state: _Host) -> None:
        self._global.release()
        state.places.release()
        self._leave(host, state)

    def _leave(self, host: str, state: _Host) -> None:
        state.users -= 1
        if state.users == 0:
            self._retire(host, state)

    def defer(self, host: str, seconds: float) -> None:
        """Hold back ``host``'s next start by at least ``seconds`` (a Retry-After).

        Call it while holding the host's slot (its state exists then).
        """
        state = self._hosts.get(host)
        if state is not None:
            state.not_before = max(state.not_before, self._clock() + seconds)

    async def _wait_turn(self, state: _Host, spacing: float) -> None:
        """Return holding a global place at a moment the host's spacing allows."""
        while True:
            wait = state.ready_at(spacing) - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._global.acquire()
            if state.ready_at(spacing) <= self._clock():
                return
            self._global.release()  # someone started meanwhile: wait again

    def _retire(self, host: str, state: _Host) -> None:
        wait = state.idle_at(self._linger) - self._clock()
        if wait <= 0:
            del self._hosts[host]
        else:
            state.timer = asyncio.get_running_loop().call_later(wait, self._evict, host, state)

    def _evict(self, host: str, state: _Host) -> None:
        state.timer = None
        if state.users == 0 and self._hosts.get(host) is state:
            del self._hosts[host]
