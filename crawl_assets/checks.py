"""Asset checks. Sensors report them as things happen (completion_sensor per stored
partition, kafka_lag_sensor when freshness changes); running a check from the UI
re-evaluates it from PostgreSQL, Kafka and the latest observations.

``retention_headroom`` (on the frontier and every pipeline asset) fails when a consumer
group's oldest unconsumed record on the asset's topics is older than
``retention_alert_ratio`` of the topic's ``retention.ms``: on Apache Kafka that work is
about to be deleted before anyone did it (workers/lag.py reads the record timestamps).
"""

# No `from __future__ import annotations` here: Dagster reads the context and resource
# annotations of decorated functions at definition time and cannot resolve strings.

import time
from collections.abc import Iterator

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSpec,
    AssetKey,
    asset_check,
    multi_asset_check,
)

from crawl_assets.aio import run_sync
from crawl_assets.resources import KafkaResource, PostgresResource
from crawl_assets.sensors.completion import COMPLETE_CHECK, DLQ_RATE_CHECK
from crawl_assets.sensors.lag import FRESHNESS_CHECK, producer_groups, take_sample
from crawl_assets.stages import FRONTIER_KEY, PIPELINE_ASSETS, STORED_PAGES
from workers.lag import (
    RetentionRisk,
    group_lag,
    high_watermarks,
    oldest_unconsumed,
    retention_ms,
    retention_risk,
)
from workers.ledger import BatchProgress, list_progress
from workers.settings import DagsterSettings, KafkaSettings
from workers.topics import CRAWL_REQUEST, STAGES

__all__ = ["RETENTION_CHECK", "build_checks", "retention_results", "retention_risks"]

RETENTION_CHECK = "retention_headroom"

# The asset each consumed topic belongs to (crawl.request is the frontier's output).
_TOPIC_ASSETS: dict[str, AssetKey] = {CRAWL_REQUEST.name: FRONTIER_KEY} | {
    t.name: a.key for a in PIPELINE_ASSETS for t in a.topics
}


async def retention_risks(kafka: KafkaSettings, *, threshold: float) -> list[RetentionRisk]:
    """Every stage group's oldest unconsumed record against its input topic's retention."""
    consumed = [(t.group, t.input) for t in STAGES.values()]
    topics = list({topic.name: topic for _, topic in consumed}.values())
    watermarks = await high_watermarks(kafka, topics)
    retention = await retention_ms(kafka, topics)
    risks = []
    for group, topic in consumed:
        lag = await group_lag(kafka, group, topic, watermarks=watermarks)
        oldest = await oldest_unconsumed(kafka, group, topic, lag=lag)
        risks.append(retention_risk(oldest, retention[topic.name], threshold=threshold))
    return risks


def retention_results(risks: list[RetentionRisk]) -> dict[AssetKey, tuple[bool, dict[str, str | float]]]:
    """Per asset: passed (no group at risk on its topics) and metadata naming the worst group."""
    by_asset: dict[AssetKey, list[RetentionRisk]] = {}
    for risk in risks:
        key = _TOPIC_ASSETS.get(risk.topic)
        if key is not None:
            by_asset.setdefault(key, []).append(risk)
    out: dict[AssetKey, tuple[bool, dict[str, str | float]]] = {}
    for key, found in by_asset.items():
        worst = max(found, key=lambda r: r.share)
        left = worst.seconds_left
        out[key] = (
            not any(r.at_risk for r in found),
            {
                "worst_group": worst.group,
                "topic": worst.topic,
                "oldest_unconsumed_s": round(worst.oldest_s, 1),
                "retention_s": round(worst.retention_s, 1),
                "share_of_retention": round(worst.share, 4),
                "threshold": worst.threshold,
                "seconds_left": round(left, 1) if left is not None else -1,
                "at_risk": ", ".join(f"{r.group} on {r.topic}" for r in found if r.at_risk) or "none",
            },
        )
    return out


async def _all_progress(postgres: PostgresResource) -> list[BatchProgress]:
    """The latest published batch of every frontier partition."""
    async with postgres.connect() as conn:
        if not await conn.fetchval("SELECT to_regclass('crawl_urls') IS NOT NULL"):
            return []
        rows = await conn.fetch(
            "SELECT DISTINCT ON (partition_key) batch FROM crawl_batches"
            " WHERE partition_key IS NOT NULL AND status = 'published'"
            " ORDER BY partition_key, created_at DESC"
        )
        return await list_progress(conn, [r["batch"] for r in rows])


def _last_advanced_at(context: AssetCheckExecutionContext, key: AssetKey) -> float | None:
    records = context.instance.fetch_observations(key, limit=1).records
    if not records:
        return None
    event = records[0].asset_observation
    value = event.metadata.get("last_advanced_at") if event is not None else None
    return float(value.value) if value is not None and isinstance(value.value, (int, float)) else None


def build_checks(settings: DagsterSettings) -> list[AssetChecksDefinition]:
    @asset_check(
        asset=STORED_PAGES,
        name=COMPLETE_CHECK,
        description="The latest batch of every frontier partition is complete (every URL it requested "
        "stored, unchanged, skipped or dead-lettered), or made progress less than stale_after_s ago.",
    )
    def partition_complete(postgres: PostgresResource) -> AssetCheckResult:
        now = time.time()
        progress = run_sync(_all_progress(postgres))
        stuck = [
            p
            for p in progress
            if not p.complete
            and p.published_at is not None
            and now - (p.last_outcome_at or p.published_at).timestamp() > settings.stale_after_s
        ]
        return AssetCheckResult(
            passed=not stuck,
            metadata={
                "batches": len(progress),
                "complete": sum(p.complete for p in progress),
                "stuck": ", ".join(p.batch for p in stuck[:20]) or "none",
            },
        )

    @asset_check(
        asset=STORED_PAGES,
        name=DLQ_RATE_CHECK,
        description="No complete stored partition dead-lettered more than dlq_rate_threshold of its URLs.",
    )
    def dlq_rate_below_threshold(postgres: PostgresResource) -> AssetCheckResult:
        complete = [p for p in run_sync(_all_progress(postgres)) if p.complete]
        over = [p for p in complete if p.dlq_rate > settings.dlq_rate_threshold]
        worst = max(complete, key=lambda p: p.dlq_rate, default=None)
        return AssetCheckResult(
            passed=not over,
            metadata={
                "threshold": settings.dlq_rate_threshold,
                "over_threshold": ", ".join(f"{p.batch} ({p.dlq_rate:.1%})" for p in over[:20]) or "none",
                "worst": f"{worst.batch} ({worst.dlq_rate:.1%})" if worst else "-",
            },
        )

    @multi_asset_check(
        name="stage_freshness",
        specs=[
            AssetCheckSpec(
                FRESHNESS_CHECK,
                asset=a.key,
                description="Fails while work is pending upstream and the asset's offsets have not "
                "advanced for stale_after_s.",
            )
            for a in PIPELINE_ASSETS
        ],
        can_subset=True,
    )
    def stage_freshness(
        context: AssetCheckExecutionContext, kafka: KafkaResource
    ) -> Iterator[AssetCheckResult]:
        sample = run_sync(take_sample(kafka.settings()))
        selected = {k.asset_key for k in context.selected_asset_check_keys}
        for asset in PIPELINE_ASSETS:
            if asset.key not in selected:
                continue
            pending = sum(sample.group_lag.get(g, 0) for g in producer_groups(asset))
            advanced = _last_advanced_at(context, asset.key)
            idle = None if advanced is None else sample.now - advanced
            stale = pending > 0 and idle is not None and idle > settings.stale_after_s
            yield AssetCheckResult(
                asset_key=asset.key,
                check_name=FRESHNESS_CHECK,
                passed=not stale,
                metadata={
                    "pending_upstream": pending,
                    "idle_s": round(idle, 1) if idle is not None else -1,
                    "stale_after_s": settings.stale_after_s,
                },
            )

    retention_assets = [FRONTIER_KEY, *(a.key for a in PIPELINE_ASSETS if a.key in _TOPIC_ASSETS.values())]

    @multi_asset_check(
        name="retention_headroom",
        specs=[
            AssetCheckSpec(
                RETENTION_CHECK,
                asset=key,
                description="Fails when a consumer group's oldest unconsumed record on this asset's "
                "topic is older than retention_alert_ratio of the topic's retention.ms (about to be "
                "deleted unprocessed on Apache Kafka).",
            )
            for key in retention_assets
        ],
        can_subset=True,
    )
    def retention_headroom(
        context: AssetCheckExecutionContext, kafka: KafkaResource
    ) -> Iterator[AssetCheckResult]:
        results = retention_results(
            run_sync(retention_risks(kafka.settings(), threshold=settings.retention_alert_ratio))
        )
        selected = {k.asset_key for k in context.selected_asset_check_keys}
        for key in retention_assets:
            if key not in selected:
                continue
            passed, metadata = results.get(key, (True, {"oldest_unconsumed_s": 0.0}))
            yield AssetCheckResult(
                asset_key=key, check_name=RETENTION_CHECK, passed=passed, metadata=metadata
            )

    return [partition_complete, dlq_rate_below_threshold, stage_freshness, retention_headroom]
