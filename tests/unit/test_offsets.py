from __future__ import annotations

from workers.lifecycle.offsets import OffsetTracker
from workers.lifecycle.retry import backoff_delay


def test_commit_position_waits_for_the_oldest_record() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    for off in (10, 11, 12):
        t.dispatched("p0", off)
    t.done("p0", 11)
    t.done("p0", 12)
    assert t.committable() == {}
    t.done("p0", 10)
    assert t.committable() == {"p0": 13}
    assert t.committable() == {}  # only moved positions are offered


def test_uncommit_and_forget() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    t.dispatched("a", 0)
    t.done("a", 0)
    positions = t.committable()
    t.uncommit(positions)
    assert t.committable() == {"a": 1}
    t.forget({"a"})
    t.done("a", 5)  # revoked partition: ignored
    assert t.committable() == {}


def test_backoff_is_capped_and_honours_retry_after() -> None:
    for attempt in range(1, 20):
        assert 0 <= backoff_delay(attempt, base=0.5, cap=4.0) <= 4.0
    assert backoff_delay(1, base=0.01, cap=10, retry_after=3) >= 3
