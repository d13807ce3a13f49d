"""Politeness per host and per IP address, and the global limit: who may send a request, when.

:meth:`HostScheduler.slot` is an async context manager around one request:

1. wait for one of the host's ``per_host_concurrency`` places (an ``asyncio.Semaphore``
   per host: waiters sleep on a future, nothing polls), then — when the caller passes the
   address it will connect to — for one of that IP's ``per_ip_concurrency`` places;
2. wait until ``delay`` seconds have passed since the host's last request *start* and
   ``per_ip_delay_s`` since the IP's last start, past any Retry-After recorded with
   :meth:`HostScheduler.defer`, and — for a host with a Crawl-delay, which the fetcher
   passes as ``ip_delay`` — until the start time it booked on the address: two host names
   on one address that ask for a Crawl-delay share one rate instead of getting one each;
3. take one of the global places (an :class:`~workers.ingestor.load.AdaptiveLimit`, sized
   by the :class:`~workers.ingestor.load.LoadGovernor` when one is given), then re-check
   the clocks (another request may have started meanwhile) before starting.

Places are always taken host first, then IP, then global, so no two requests can wait on
each other. A request waiting for its turn never holds a global place, so one slow or
rate-limited host or address cannot starve the others.

A Crawl-delay is shared on an address by booking, not by waiting for quiet: a delayed
request books the address's next free time (then the next one is free ``ip_delay`` later),
so delayed hosts on one address take turns in the order they came, and hosts without a
Crawl-delay never wait for them nor hold them back. (Waiting until the address had been
quiet for the Crawl-delay starved a delayed host for as long as another host on the same
address was busy — on a CDN address, for ever.)

State is created on first use and dropped once idle (no user, delay elapsed): one timer
per idle period of a host or address (a busy one re-arms it only when it fires), so
memory follows what is being crawled right now. "Idle" waits
for the largest spacing any request may ask for (``max_delay_s``, the Crawl-delay cap).
Limits hold per ingestor process: ``crawl.request`` is keyed by host, so one process owns
a host, but two hosts on one address may belong to two processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from workers.ingestor.load import AdaptiveLimit

__all__ = ["HostScheduler"]


class _Queue:
    """The state of one host or one IP address."""

    __slots__ = ("booked", "last_start", "not_before", "places", "spacing", "timer", "users")

    def __init__(self, places: int) -> None:
        self.places = asyncio.Semaphore(places)
        self.last_start = -1e9  # monotonic time of the last request start
        self.spacing = 0.0  # the spacing the last request asked for
        self.not_before = 0.0  # no start before this (a Retry-After)
        self.booked = 0.0  # an address's next free time for a request with a Crawl-delay
        self.users = 0
        self.timer: asyncio.TimerHandle | None = None

    def ready_at(self, spacing: float) -> float:
        return max(self.last_start + spacing, self.not_before)

    def idle_at(self, linger: float) -> float:
        return max(self.ready_at(max(self.spacing, linger)), self.booked)


class _Table:
    """Queues by key, created on demand and retired once idle."""

    __slots__ = ("_clock", "_linger", "_places", "queues")

    def __init__(self, places: int, linger: float, clock: Callable[[], float]) -> None:
        self._places = places
        self._linger = linger
        self._clock = clock
        self.queues: dict[str, _Queue] = {}

    def enter(self, key: str) -> _Queue:
        state = self.queues.get(key)
        if state is None:
            state = self.queues[key] = _Queue(self._places)
        state.users += 1  # a pending eviction timer finds it in use and lets it be
        return state

    def leave(self, key: str, state: _Queue) -> None:
        state.users -= 1
        if state.users or state.timer is not None:
            return
        wait = state.idle_at(self._linger) - self._clock()
        if wait <= 0:
            if self.queues.get(key) is state:
                del self.queues[key]
        else:
            state.timer = asyncio.get_running_loop().call_later(wait, self._evict, key, state)

    def _evict(self, key: str, state: _Queue) -> None:
        """One timer per idle period (not one per request): re-armed while the state is used."""
        state.timer = None
        if state.users or self.queues.get(key) is not state:
            return  # in use again: its last leave() arms a new timer
        wait = state.idle_at(self._linger) - self._clock()
        if wait <= 0:
            del self.queues[key]
        else:
            state.timer = asyncio.get_running_loop().call_later(wait, self._evict, key, state)


class _Slot:
    """The async context manager returned by :meth:`HostScheduler.slot` (a class, not a
    generator: it runs once per request)."""

    __slots__ = ("_held", "_host", "_ip", "_ip_spacing", "_scheduler", "_spacing")

    def __init__(
        self, scheduler: HostScheduler, host: str, spacing: float, ip: str | None, ip_spacing: float
    ) -> None:
        self._scheduler = scheduler
        self._host = host
        self._spacing = spacing
        self._ip = ip
        self._ip_spacing = ip_spacing
        self._held: tuple[_Queue, _Queue | None] | None = None

    async def __aenter__(self) -> float:
        s = self._scheduler
        self._held, waited = await s._acquire(self._host, self._spacing, self._ip, self._ip_spacing)
        return waited

    async def __aexit__(self, *exc_info: object) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            self._scheduler._release(self._host, self._ip, *held)


class HostScheduler:
    """Per-host and per-IP concurrency and spacing plus a global concurrency limit."""

    def __init__(
        self,
        *,
        concurrency: int,
        per_host_concurrency: int,
        per_host_delay_s: float,
        per_ip_concurrency: int | None = None,
        per_ip_delay_s: float = 0.0,
        max_delay_s: float = 0.0,
        global_limit: AdaptiveLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._global = global_limit or AdaptiveLimit(concurrency)
        self.default_delay = per_host_delay_s
        self.default_ip_delay = per_ip_delay_s
        # An idle host is kept until no later request could still have to wait for it.
        linger = max(per_host_delay_s, per_ip_delay_s, max_delay_s)
        self._clock = clock
        self._hosts = _Table(per_host_concurrency, linger, clock)
        self._ips = _Table(per_ip_concurrency or concurrency, linger, clock)

    @property
    def hosts(self) -> int:
        """Hosts with live state (in use, or still inside their delay)."""
        return len(self._hosts.queues)

    @property
    def addresses(self) -> int:
        """IP addresses with live state."""
        return len(self._ips.queues)

    def slot(
        self, host: str, *, delay: float | None = None, ip: str | None = None, ip_delay: float | None = None
    ) -> _Slot:
        """``async with scheduler.slot(host, ip=...) as waited:`` holds a place for one request.

        ``waited`` is the seconds spent waiting for the turn. Without ``ip`` only the host's
        limits (and the global one) apply.
        """
        spacing = self.default_delay if delay is None else delay
        ip_spacing = self.default_ip_delay if ip_delay is None else ip_delay
        return _Slot(self, host, spacing, ip, ip_spacing)

    async def _acquire(
        self, host: str, spacing: float, ip: str | None, ip_spacing: float
    ) -> tuple[tuple[_Queue, _Queue | None], float]:
        entered = self._clock()
        state = self._hosts.enter(host)
        address = self._ips.enter(ip) if ip is not None else None
        held: list[asyncio.Semaphore] = []
        try:
            await state.places.acquire()
            held.append(state.places)
            if address is not None:
                await address.places.acquire()
                held.append(address.places)
            await self._wait_turn(state, spacing, address, ip_spacing)
        except BaseException:
            for places in held:
                places.release()
            self._hosts.leave(host, state)
            if address is not None and ip is not None:
                self._ips.leave(ip, address)
            raise
        now = self._clock()
        state.last_start = now
        state.spacing = spacing
        if address is not None:
            address.last_start = now
            if ip_spacing > self.default_ip_delay:  # started late: the next booking waits from now
                address.booked = max(address.booked, now + ip_spacing)
        return (state, address), now - entered

    def _release(self, host: str, ip: str | None, state: _Queue, address: _Queue | None) -> None:
        self._global.release()
        if address is not None and ip is not None:
            address.places.release()
            self._ips.leave(ip, address)
        state.places.release()
        self._hosts.leave(host, state)

    def defer(self, host: str, seconds: float) -> None:
        """Hold back ``host``'s next start by at least ``seconds`` (a Retry-After).

        Call it while holding the host's slot (its state exists then).
        """
        state = self._hosts.queues.get(host)
        if state is not None:
            state.not_before = max(state.not_before, self._clock() + seconds)

    async def _wait_turn(
        self, state: _Queue, spacing: float, address: _Queue | None, ip_spacing: float
    ) -> None:
        """Return holding a global place at a moment the host's and the IP's spacing allow."""
        booking = 0.0
        if address is not None and ip_spacing > self.default_ip_delay:
            booking = max(self._ready(state, spacing, address), address.booked)
            address.booked = booking + ip_spacing
        while True:
            wait = max(self._ready(state, spacing, address), booking) - self._clock()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            await self._global.acquire()
            if self._ready(state, spacing, address) <= self._clock():
                return
            self._global.release()  # someone started meanwhile: wait again

    def _ready(self, state: _Queue, spacing: float, address: _Queue | None) -> float:
        ready = max(state.ready_at(spacing), self._clock())
        if address is not None:
            ready = max(ready, address.ready_at(self.default_ip_delay))
        return ready
