"""Liveness rules: no partitions, no progress, and the states that are fine."""

from __future__ import annotations

from workers.lifecycle.liveness import Liveness, Sample


def _sample(now: float, **kw: object) -> Sample:
    values: dict[str, object] = {
        "partitions": 4, "finished": 0, "in_flight": 0, "lag": 0, "fetch_fresh": True, "group_saturated": False,
    }  # fmt: skip
    values.update(kw)
    return Sample(now=now, **values)  # type: ignore[arg-type]


def test_no_partitions_beyond_the_bound_is_unhealthy() -> None:
    live = Liveness(no_partitions_s=300, stall_s=300, started_at=0)
    assert live.observe(_sample(10, partitions=4)).healthy
    v = live.observe(_sample(200, partitions=0))
    assert v.healthy and not v.ready and v.reason == "no partitions for 190 s"
    v = live.observe(_sample(311, partitions=0))
    assert not v.healthy and v.reason == "no partitions for 301 s"


def test_idle_in_a_saturated_group_is_fine() -> None:
    live = Liveness(no_partitions_s=300, stall_s=300, started_at=0)
    v = live.observe(_sample(1000, partitions=0, group_saturated=True))
    assert v.healthy and v.ready and v.reason == ""


def test_lag_without_progress_is_unhealthy_but_progress_or_being_caught_up_is_not() -> None:
    live = Liveness(no_partitions_s=300, stall_s=60, started_at=0)
    assert live.observe(_sample(50, lag=10, in_flight=5, finished=0)).healthy
    assert live.observe(_sample(100, lag=10, in_flight=5, finished=7)).healthy  # progress at 100
    v = live.observe(_sample(161, lag=10, in_flight=5, finished=7))
    assert not v.healthy and v.reason == "no progress for 61 s (lag 10, 5 in flight)"

    idle = Liveness(no_partitions_s=300, stall_s=60, started_at=0)
    assert idle.observe(_sample(1000)).healthy  # caught up with a broker that answers


def test_a_silent_broker_is_no_progress() -> None:
    live = Liveness(no_partitions_s=300, stall_s=60, started_at=0)
    v = live.observe(_sample(61, fetch_fresh=False))
    assert not v.healthy and "no fetch response" in v.reason
