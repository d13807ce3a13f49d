"""Per-host circuit breaker with a fake clock."""

from __future__ import annotations

import pytest

from workers.errors import BlockedError
from workers.ingestor.breaker import CircuitBreaker


def make(failures: int = 3, pause: float = 60.0) -> tuple[CircuitBreaker, list[float]]:
    now = [0.0]
    return CircuitBreaker(failures=failures, pause_s=pause, clock=lambda: now[0]), now


def test_opens_after_consecutive_failures() -> None:
    breaker, _now = make()
    for _ in range(2):
        breaker.record_failure("h", "HTTP 500")
        breaker.check("h")
    breaker.record_failure("h", "HTTP 503 Service Unavailable from http://h/")
    with pytest.raises(BlockedError, match=r"circuit open for h: 3 consecutive failures \(last: HTTP 503"):
        breaker.check("h")
    assert breaker.is_open("h")
    breaker.check("other")  # other hosts unaffected


def test_success_resets_the_count() -> None:
    breaker, _ = make()
    breaker.record_failure("h", "x")
    breaker.record_failure("h", "x")
    breaker.record_success("h")
    breaker.record_failure("h", "x")
    breaker.check("h")


def test_half_open_after_pause() -> None:
    breaker, now = make(pause=10.0)
    for _ in range(3):
        breaker.record_failure("h", "x")
    now[0] = 10.5
    breaker.check("h")  # pause over: requests pass again
    breaker.record_failure("h", "x")  # one more failure reopens at once
    with pytest.raises(BlockedError, match="4 consecutive failures"):
        breaker.check("h")
    now[0] = 30.0
    breaker.record_success("h")
    assert not breaker.is_open("h")


def test_table_is_swept_of_recovered_hosts() -> None:
    breaker, now = make(pause=1.0)
    for i in range(10_000):
        breaker.record_failure(f"h{i}", "x")
    now[0] = 5.0
    breaker.record_failure("new", "x")
    assert len(breaker._hosts) == 1
