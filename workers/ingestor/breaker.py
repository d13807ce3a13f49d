"""Per-host circuit breaker: stop hammering a host that keeps failing, without failing its URLs.

After ``failures`` consecutive failures of a host's pages (connection errors, timeouts,
5xx, 429, DNS failures) its circuit **trips**: for a pause :meth:`check` raises
:class:`~workers.ingestor.failures.HostPaused` with ``retry_after`` = the time left. The
daemon puts such a request back on ``crawl.request`` with ``not_before`` = the end of the
pause; it is never dead-lettered for being paused (only a request that used up its
requeue budget is, see ``workers/ingestor/requeue.py``). robots.txt fetches never count:
RFC 9309 has its own rule for an unreachable robots.txt (see ``robots.py``).

When the pause ends the circuit is half-open: requests pass, one success closes it, one
more failure trips it again. Each trip without a success in between doubles the pause
(``pause_s``, 2×, 4×, … up to ``max_pause_s``): a host that is down for good is asked
less and less often.

**The state decays** (rather than being kept per batch): failures further apart than a
pause are not "consecutive" (the count restarts), and a host with no failure for twice its
current pause is forgotten entirely, trips included. So a batch that tripped a host does
not doom the next batch of the same host: once the host answers, or after the quiet
period, its requests are fetched again. Only failing hosts have state (a success deletes
it), so the table stays small.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.ingestor.failures import HostPaused

__all__ = ["CircuitBreaker"]

_SWEEP_MIN = 10_000


class _State:
    __slots__ = ("failures", "last_error", "last_failure", "open_until", "trips")

    def __init__(self) -> None:
        self.failures = 0
        self.trips = 0
        self.open_until = 0.0
        self.last_failure = 0.0
        self.last_error = ""


class CircuitBreaker:
    """Consecutive-failure breaker keyed by host (see the module docstring)."""

    def __init__(
        self,
        *,
        failures: int,
        pause_s: float,
        max_pause_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._threshold = max(1, failures)
        self._pause = pause_s
        self._max_pause = max(pause_s, max_pause_s if max_pause_s is not None else pause_s)
        self._clock = clock
        self._hosts: dict[str, _State] = {}
        self._sweep_at = _SWEEP_MIN

    def check(self, host: str) -> None:
        """Raise HostPaused (``retry_after`` = seconds left) if ``host``'s circuit is open."""
        state = self._hosts.get(host)
        if state is None or state.open_until == 0.0:
            return
        left = state.open_until - self._clock()
        if left > 0:
            raise HostPaused(
                f"host {host} paused by the circuit breaker: {state.failures} consecutive failures "
                f"(last: {state.last_error}); paused for another {left:.0f}s",
                retry_after=left,
                trips=state.trips,
            )

    def is_open(self, host: str) -> bool:
        state = self._hosts.get(host)
        return state is not None and state.open_until > self._clock()

    def record_success(self, host: str) -> None:
        self._hosts.pop(host, None)

    def record_failure(self, host: str, reason: str) -> None:
        now = self._clock()
        state = self._hosts.get(host)
        if state is not None and now - state.last_failure > 2 * self._current_pause(state):
            del self._hosts[host]  # quiet for long enough: forget it, trips included
            state = None
        if state is None:
            self._sweep()
            state = self._hosts[host] = _State()
        elif state.open_until == 0.0 and now - state.last_failure > self._pause:
            state.failures = 0  # failures a pause apart are not consecutive
        state.failures += 1
        state.last_error = reason
        state.last_failure = now
        if state.failures >= self._threshold and state.open_until <= now:
            state.trips += 1
            state.open_until = now + self._current_pause(state)

    def _current_pause(self, state: _State) -> float:
        return float(min(self._max_pause, self._pause * 2.0 ** max(0, state.trips - 1)))

    def _sweep(self) -> None:
        """Forget hosts that stopped failing (keeps the table bounded).

        Runs only when the table doubled since the last sweep, so inserts stay O(1) amortised.
        """
        if len(self._hosts) < self._sweep_at:
            return
        now = self._clock()
        for host in [
            h
            for h, s in self._hosts.items()
            if max(s.open_until, s.last_failure + 2 * self._current_pause(s)) < now
        ]:
            del self._hosts[host]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._hosts))
