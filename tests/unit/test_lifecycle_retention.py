"""Retention arithmetic: how close a group's oldest unconsumed record is to deletion."""

from __future__ import annotations

from crawl_assets.checks import retention_results
from crawl_assets.stages import FRONTIER_KEY, STORED_PAGES
from workers.lag import OldestUnconsumed, retention_risk
from workers.topics import CRAWL_REQUEST, PROCESS_RICH, RAW_PAGE, STORAGE_SAVED

HOUR_MS = 3_600_000


def test_share_of_retention_and_time_left() -> None:
    oldest = OldestUnconsumed("g", "raw.page", {0: 3600.0, 3: 45_000.0, 7: 10.0})
    assert oldest.oldest_s == 45_000.0
    risk = retention_risk(oldest, 24 * HOUR_MS, threshold=0.5)
    assert risk.retention_s == 86_400 and round(risk.share, 4) == 0.5208
    assert risk.at_risk and risk.seconds_left == 41_400
    assert not retention_risk(oldest, 72 * HOUR_MS, threshold=0.5).at_risk


def test_caught_up_and_unlimited_retention_are_never_at_risk() -> None:
    assert OldestUnconsumed("g", "raw.page", {}).oldest_s == 0.0
    forever = retention_risk(OldestUnconsumed("g", "t", {0: 1e9}), -1, threshold=0.5)
    assert forever.share == 0.0 and not forever.at_risk and forever.seconds_left is None


def test_results_fail_the_asset_whose_topic_is_at_risk_and_name_the_worst_group() -> None:
    risks = [
        retention_risk(OldestUnconsumed("streamcrawl.ingestor", CRAWL_REQUEST.name, {1: 100 * 3600.0}), 168 * HOUR_MS, threshold=0.5),
        retention_risk(OldestUnconsumed("streamcrawl.router", RAW_PAGE.name, {0: 60.0}), 24 * HOUR_MS, threshold=0.5),
        retention_risk(OldestUnconsumed("streamcrawl.rich_renderer", PROCESS_RICH.name, {2: 30 * 3600.0}), 72 * HOUR_MS, threshold=0.5),
        retention_risk(OldestUnconsumed("streamcrawl.fast_extractor", "process.fast", {}), 24 * HOUR_MS, threshold=0.5),
    ]  # fmt: skip
    results = retention_results(risks)
    passed, meta = results[FRONTIER_KEY]
    assert passed is False and meta["worst_group"] == "streamcrawl.ingestor"
    assert meta["at_risk"] == "streamcrawl.ingestor on crawl.request"
    assert results[next(k for k in results if k.to_user_string() == "raw_pages")][0] is True
    routed_passed, routed = results[next(k for k in results if k.to_user_string() == "routed_pages")]
    assert routed_passed is True and routed["worst_group"] == "streamcrawl.rich_renderer"  # 30 h of 72 h
    assert STORED_PAGES not in results and STORAGE_SAVED.name not in {r.topic for r in risks}
