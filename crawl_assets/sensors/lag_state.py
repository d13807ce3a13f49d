"""The lag sensor's decisions, as a pure function of (cursor state, one sample).

Kept apart from Kafka and Dagster so every rule is unit-testable:

* observations: per stage asset, emitted when its offsets or lags changed, or as a
  heartbeat every ``heartbeat_s``;
* freshness: a pipeline asset is stale when work is pending upstream (the producing
  stages' groups lag) and its offsets have not advanced for ``stale_after_s``; a check
  evaluation is emitted when the verdict changes;
* alerts: a group lagging above ``threshold`` for ``ticks`` consecutive ticks opens an
  episode and raises exactly one alert; the episode ends when the lag drops back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crawl_assets.stages import PIPELINE_ASSETS, StageAsset

__all__ = ["Alert", "AssetReport", "LagDecisions", "LagSample", "decide"]


@dataclass(frozen=True, slots=True)
class LagSample:
    now: float
    watermarks: dict[str, dict[int, int]]
    """topic -> partition -> high watermark."""
    group_lag: dict[str, int]
    """consumer group -> total lag on its input topic."""


@dataclass(frozen=True, slots=True)
class AssetReport:
    asset: StageAsset
    metadata: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Alert:
    group: str
    lag: int
    ticks: int
    episode: int
    """Epoch millisecond the episode began: with the group, the alert's run key."""

    @property
    def run_key(self) -> str:
        return f"lag-alert:{self.group}:{self.episode}"


@dataclass(slots=True)
class LagDecisions:
    state: dict[str, Any]
    observations: list[AssetReport] = field(default_factory=list)
    freshness: list[tuple[StageAsset, bool, dict[str, Any]]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)


def decide(
    state: dict[str, Any],
    sample: LagSample,
    *,
    assets: tuple[StageAsset, ...],
    consumer_groups: dict[StageAsset, tuple[str, ...]],
    producer_groups: dict[StageAsset, tuple[str, ...]],
    threshold: int,
    ticks: int,
    stale_after_s: float,
    heartbeat_s: float,
) -> LagDecisions:
    now = sample.now
    prev_t = state.get("t")
    old_assets: dict[str, Any] = state.get("assets", {})
    old_groups: dict[str, Any] = state.get("groups", {})
    out = LagDecisions(state={"t": now, "assets": {}, "groups": {}})

    for asset in assets:
        name = asset.key.to_user_string()
        old = old_assets.get(name, {})
        offsets = sum(sum(sample.watermarks.get(t.name, {}).values()) for t in asset.topics)
        lag = sum(sample.group_lag.get(g, 0) for g in consumer_groups[asset])
        pending = sum(sample.group_lag.get(g, 0) for g in producer_groups[asset])
        advanced_at = now if old.get("offsets") != offsets else old.get("advanced_at", now)
        rate = 0.0
        if prev_t is not None and "offsets" in old and now > prev_t:
            rate = max(0, offsets - old["offsets"]) / (now - prev_t)
        entry: dict[str, Any] = {"offsets": offsets, "advanced_at": advanced_at}
        signature = [offsets, lag, pending]
        if old.get("sig") != signature or now - old.get("emitted_at", 0.0) >= heartbeat_s:
            out.observations.append(
                AssetReport(
                    asset,
                    {
                        "offsets": offsets,
                        "rate_per_s": round(rate, 2),
                        "consumer_lag": lag,
                        "pending_upstream": pending,
                        "last_advanced_at": advanced_at,
                        "group_lag": {g: sample.group_lag.get(g, 0) for g in consumer_groups[asset]},
                    },
                )
            )
            entry["sig"], entry["emitted_at"] = signature, now
        else:
            entry["sig"], entry["emitted_at"] = old.get("sig"), old.get("emitted_at", 0.0)
        if asset in PIPELINE_ASSETS:
            idle_s = now - advanced_at
            fresh = not (pending > 0 and idle_s > stale_after_s)
            if old.get("fresh") is not fresh:
                out.freshness.append(
                    (
                        asset,
                        fresh,
                        {
                            "pending_upstream": pending,
                            "idle_s": round(idle_s, 1),
                            "stale_after_s": stale_after_s,
                        },
                    )
                )
            entry["fresh"] = fresh
        out.state["assets"][name] = entry

    for group, lag in sorted(sample.group_lag.items()):
        old = old_groups.get(group, {})
        if lag <= threshold:
            out.state["groups"][group] = {"ticks": 0}
            continue
        n = int(old.get("ticks", 0)) + 1
        episode = int(old.get("episode", now * 1000))
        alerted = bool(old.get("alerted", False))
        if n >= ticks and not alerted:
            out.alerts.append(Alert(group=group, lag=lag, ticks=n, episode=episode))
            alerted = True
        out.state["groups"][group] = {"ticks": n, "episode": episode, "alerted": alerted}
    return out
