"""Per-host circuit breaker: stop hammering a host that keeps failing.

After ``failures`` consecutive failures (connection errors, timeouts, 5xx, 429, DNS
failures) a host's circuit opens for ``pause_s`` seconds; meanwhile :meth:`check` raises
:class:`~workers.errors.BlockedError` ("circuit open ...") for that host, which the
worker dead-letters with the reason (a DLQ replay retries it later). When the pause
ends the circuit is half-open: requests pass, one success closes it, one more failure
opens it again for another pause.

Only failing hosts have state (a success deletes it), so the table stays small.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from workers.errors import BlockedError

__all__ = ["CircuitBreaker"]

_SWEEP_MIN = 10_000


class _State:
    __slots__ = ("failures", "last_error", "last_failure", "open_until")

    def __init__(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.last_failure = 0.0
        self.last_error = ""


class CircuitBreaker:
    """Consecutive-failure breaker keyed by host."""

    def __init__(self, *, failures: int, pause_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = max(1, failures)
        self._pause = pause_s
        self._clock = clock
        self._hosts: dict[str, _State] = {}
        self._sweep_at = _SWEEP_MIN

    def check(self, host: str) -> None:
        """Raise BlockedError if ``host``'s circuit is open."""
        state = self._hosts.get(host)
        if state is None or state.open_until == 0.0:
            return
        left = state.open_until - self._clock()
        if left > 0:
            raise BlockedError(
                f"circuit open for {host}: {state.failures} consecutive failures "
                f"(last: {state.last_error}); paused for another {left:.0f}s"
            )

    def is_open(self, host: str) -> bool:
        state = self._hosts.get(host)
        return state is not None and state.open_until > self._clock()

    def record_success(self, host: str) -> None:
        self._hosts.pop(host, None)

    def record_failure(self, host: str, reason: str) -> None:
        state = self._hosts.get(host)
        if state is None:
            self._sweep()
            state = self._hosts[host] = _State()
        state.failures += 1
        state.last_error = reason
        state.last_failure = self._clock()
        if state.failures >= self._threshold:
            state.open_until = self._clock() + self._pause

    def _sweep(self) -> None:
        """Forget hosts that stopped failing a pause ago (keeps the table bounded).

        Runs only when the table doubled since the last sweep, so inserts stay O(1) amortised.
        """
        if len(self._hosts) < self._sweep_at:
            return
        now = self._clock()
        for host in [
            h for h, s in self._hosts.items() if max(s.open_until, s.last_failure + self._pause) < now
        ]:
            del self._hosts[host]
        self._sweep_at = max(_SWEEP_MIN, 2 * len(self._hosts))
