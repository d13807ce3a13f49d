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


def test_uncommit_and_discard() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    t.dispatched("a", 0)
    t.done("a", 0)
    positions = t.committable()
    t.uncommit(positions)
    assert t.committable() == {"a": 1}
    t.discard({"a"})
    t.done("a", 5)  # partition given away: ignored
    assert t.committable() == {}


def test_revoked_partition_keeps_counting_and_resumes_where_it_was() -> None:
    t: OffsetTracker[str] = OffsetTracker()
    for off in (0, 1, 2):
        t.dispatched("p", off, timestamp=1000 + off)
    t.done("p", 0)
    t.revoke({"p"})
    assert not t.owns("p") and t.committable() == {}  # set aside: not committable
    assert t.in_flight() == 0 and t.in_flight({"p"}) == 2  # ...but its running records still count
    t.done("p", 1)  # a batch that was running finishes during the rebalance
    part = t.restore("p")
    assert part is not None and part.next_offset == 3  # fetching resumes after the dispatched ones
    assert t.committable() == {"p": 2}
    assert part.oldest_pending_timestamp() == 1002
    assert t.restore("p") is None and t.finished == 2


def test_backoff_is_capped_and_honours_retry_after() -> None:
    for attempt in range(1, 20):
        assert 0 <= backoff_delay(attempt, base=0.5, cap=4.0) <= 4.0
    assert backoff_delay(1, base=0.01, cap=10, retry_after=3) >= 3
