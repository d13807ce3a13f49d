"""Asset checks. Sensors report them as things happen (completion_sensor per stored
partition, kafka_lag_sensor when freshness changes); running a check from the UI
re-evaluates it from PostgreSQL, Kafka and the latest observations.
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
from crawl_assets.stages import PIPELINE_ASSETS, STORED_PAGES
from workers.ledger import BatchProgress, list_progress
from workers.settings import DagsterSettings

__all__ = ["build_checks"]


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

    return [partition_complete, dlq_rate_below_threshold, stage_freshness]
