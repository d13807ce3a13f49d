"""Per-host circuit breaker with a fake clock: pauses (never fails) a host, and decays."""

from __future__ import annotations

import pytest

from workers.errors import RetryableError
from workers.ingestor.breaker import CircuitBreaker
from workers.ingestor.failures import HostPaused


def make(
    failures: int = 3, pause: float = 60.0, max_pause: float = 600.0
) -> tuple[CircuitBreaker, list[float]]:
    now = [0.0]
    return CircuitBreaker(failures=failures, pause_s=pause, max_pause_s=max_pause, clock=lambda: now[0]), now


def test_trips_after_consecutive_failures_and_pauses_the_host() -> None:
    breaker, now = make()
    for _ in range(2):
        breaker.record_failure("h", "HTTP 500")
        breaker.check("h")
    breaker.record_failure("h", "HTTP 503 Service Unavailable from http://h/")
    now[0] = 15.0
    with pytest.raises(
        HostPaused, match=r"host h paused .*: 3 consecutive failures \(last: HTTP 503"
    ) as caught:
        breaker.check("h")
    # A pause is retryable with the time left: the daemon re-queues, it does not dead-letter.
    assert isinstance(caught.value, RetryableError) and caught.value.retry_after == pytest.approx(45.0)
    assert breaker.is_open("h")
    breaker.check("other")  # other hosts unaffected


def test_success_resets_the_count() -> None:
    breaker, _ = make()
    breaker.record_failure("h", "x")
    breaker.record_failure("h", "x")
    breaker.record_success("h")
    breaker.record_failure("h", "x")
    breaker.check("h")


def test_failures_a_pause_apart_are_not_consecutive() -> None:
    breaker, now = make(pause=10.0)
    for t in (0.0, 11.0, 22.0, 33.0):
        now[0] = t
        breaker.record_failure("h", "x")
        breaker.check("h")


def test_half_open_then_each_trip_doubles_the_pause_up_to_the_cap() -> None:
    breaker, now = make(pause=10.0, max_pause=25.0)
    for _ in range(3):
        breaker.record_failure("h", "x")
    pauses, trips = [], []
    for _ in range(3):
        with pytest.raises(HostPaused) as caught:
            breaker.check("h")
        assert caught.value.retry_after is not None
        pauses.append(caught.value.retry_after)
        trips.append(caught.value.trips)
        now[0] += caught.value.retry_after + 0.5
        breaker.check("h")  # pause over: requests pass again (half-open)
        breaker.record_failure("h", "x")  # one more failure trips it again at once
    assert pauses == [10.0, 20.0, 25.0] and trips == [1, 2, 3]
    breaker.record_success("h")
    assert not breaker.is_open("h")


def test_state_decays_so_a_later_batch_starts_fresh() -> None:
    breaker, now = make(pause=10.0)
    for _ in range(3):
        breaker.record_failure("h", "x")
    now[0] = 10.5  # the pause is over; no request came for a while
    breaker.check("h")
    now[0] = 40.0  # quiet for more than two pauses: forgotten, trips included
    breaker.record_failure("h", "x")
    breaker.check("h")  # one failure of the new batch does not re-open it


def test_table_is_swept_of_recovered_hosts() -> None:
    breaker, now = make(pause=1.0)
    for i in range(10_000):
        breaker.record_failure(f"h{i}", "x")
    now[0] = 5.0
    breaker.record_failure("new", "x")
    assert len(breaker._hosts) == 1
