"""Pure control-plane logic: the lag sensor's decisions, cursors (list parsing: test_lists.py)."""

from __future__ import annotations

from crawl_assets.sensors.cursor import dump_cursor, load_cursor
from crawl_assets.sensors.lag import consumer_groups, producer_groups
from crawl_assets.sensors.lag_state import LagSample, decide
from crawl_assets.stages import STAGE_ASSETS
from workers.topics import RAW_PAGE, STAGES, Stage

ROUTER = STAGES[Stage.ROUTER].group
INGESTOR = STAGES[Stage.INGESTOR].group


def _decide(state: dict, lags: dict[str, int], now: float, offsets: int = 10):  # type: ignore[no-untyped-def,type-arg]
    sample = LagSample(now=now, watermarks={RAW_PAGE.name: {0: offsets}}, group_lag=lags)
    return decide(
        state,
        sample,
        assets=STAGE_ASSETS,
        consumer_groups={a: consumer_groups(a) for a in STAGE_ASSETS},
        producer_groups={a: producer_groups(a) for a in STAGE_ASSETS},
        threshold=100,
        ticks=3,
        stale_after_s=60,
        heartbeat_s=600,
    )


def test_sustained_lag_raises_one_alert_per_episode() -> None:
    state: dict = {}  # type: ignore[type-arg]
    alerts = []
    for i in range(6):
        d = _decide(state, {ROUTER: 500}, now=1000.0 + i)
        alerts += d.alerts
        state = d.state
    assert len(alerts) == 1 and alerts[0].group == ROUTER and alerts[0].ticks == 3
    state = _decide(state, {ROUTER: 50}, now=1010.0).state  # episode over
    again = []
    for i in range(3):
        d = _decide(state, {ROUTER: 500}, now=1020.0 + i)
        again += d.alerts
        state = d.state
    assert len(again) == 1 and again[0].run_key != alerts[0].run_key


def test_observations_only_on_change_and_freshness_verdicts() -> None:
    first = _decide({}, {INGESTOR: 5}, now=1000.0)
    assert {r.asset.key.to_user_string() for r in first.observations} == {
        a.key.to_user_string() for a in STAGE_ASSETS
    }
    raw = next(r for r in first.observations if r.asset.key.to_user_string() == "raw_pages")
    assert raw.metadata["offsets"] == 10 and raw.metadata["pending_upstream"] == 5
    assert all(fresh for _, fresh, _ in first.freshness) and len(first.freshness) == 4
    quiet = _decide(first.state, {INGESTOR: 5}, now=1030.0)
    assert quiet.observations == [] and quiet.freshness == []
    stale = _decide(quiet.state, {INGESTOR: 5}, now=1100.0)
    assert [(a.key.to_user_string(), fresh) for a, fresh, _ in stale.freshness] == [("raw_pages", False)]
    moving = _decide(stale.state, {INGESTOR: 5}, now=1110.0, offsets=20)
    raw_now = next(r for r in moving.observations if r.asset.key.to_user_string() == "raw_pages")
    assert raw_now.metadata["rate_per_s"] == 1.0
    assert [(a.key.to_user_string(), fresh) for a, fresh, _ in moving.freshness] == [("raw_pages", True)]


def test_cursor_round_trip_and_garbage() -> None:
    assert load_cursor(dump_cursor({"a": {"1": 2}})) == {"a": {"1": 2}}
    assert load_cursor(None) == {} and load_cursor("not json") == {} and load_cursor("[1]") == {}
