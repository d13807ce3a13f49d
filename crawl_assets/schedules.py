"""Schedules. Off by default: turning one on is an operator's decision."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from crawl_assets.aio import run_sync
from crawl_assets.partitions import TRANCO_PARTITIONS
from crawl_assets.resources import PostgresResource
from workers.settings import DagsterSettings

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

__all__ = ["build_frontier_recrawl", "build_tranco_weekly_refresh", "stale_partitions"]


def build_tranco_weekly_refresh(job: UnresolvedAssetJobDefinition) -> ScheduleDefinition:
    @schedule(
        name="tranco_weekly_refresh",
        job=job,
        cron_schedule="0 5 * * 1",
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description="Mondays 05:00 UTC: load the previous day's Tranco list (needs internet and the "
        "`tranco` package) as a new tranco_list partition named by its date.",
    )
    def tranco_weekly_refresh(context: ScheduleEvaluationContext) -> RunRequest:
        day = (context.scheduled_execution_time - timedelta(days=1)).date().isoformat()
        # A dynamic partition must exist before a run can target it; adding is idempotent.
        context.instance.add_dynamic_partitions(TRANCO_PARTITIONS.name or "tranco_lists", [day])
        return RunRequest(run_key=f"tranco:{day}", partition_key=day)

    return tranco_weekly_refresh


async def stale_partitions(
    postgres: PostgresResource, *, older_than_s: float, limit: int
) -> list[dict[str, Any]]:
    """Frontier partitions whose latest batch completed more than ``older_than_s`` ago, oldest first."""
    async with postgres.connect() as conn:
        rows = await conn.fetch(
            "SELECT * FROM (SELECT DISTINCT ON (partition_key) partition_key, batch, list_id, url_template,"
            " scope, sitemaps, completed_at FROM crawl_batches WHERE partition_key IS NOT NULL"
            " ORDER BY partition_key, created_at DESC) latest"
            " WHERE completed_at < now() - make_interval(secs => $1) ORDER BY completed_at LIMIT $2",
            older_than_s,
            limit,
        )
    return [dict(r) for r in rows]


def _frontier_config(row: dict[str, Any]) -> dict[str, Any]:
    scope = json.loads(row["scope"]) if isinstance(row["scope"], str) else (row["scope"] or {})
    config: dict[str, Any] = {
        "list_id": row["list_id"],
        "recrawl": True,
        "sitemaps": bool(row["sitemaps"]),
        "depth": int(scope.get("max_depth", 0)),
        "scope": scope.get("mode", "host"),
        "max_pages_per_host": scope.get("max_pages_per_host"),
        "max_pages": scope.get("max_pages"),
        "include": list(scope.get("include", [])),
        "exclude": list(scope.get("exclude", [])),
        "follow_nofollow": bool(scope.get("follow_nofollow", False)),
    }
    if row["url_template"]:
        config["url_template"] = row["url_template"]
    return config


def build_frontier_recrawl(
    job: UnresolvedAssetJobDefinition, settings: DagsterSettings
) -> ScheduleDefinition:
    @schedule(
        name="frontier_recrawl",
        job=job,
        cron_schedule=settings.recrawl_cron,
        execution_timezone="UTC",
        default_status=DefaultScheduleStatus.STOPPED,
        description="Re-materialises frontier partitions whose latest batch completed more than "
        "STREAMCRAWL_DAGSTER_RECRAWL_AFTER_DAYS ago, with recrawl on (conditional requests: unchanged "
        "pages cost a 304) and the same list, template and scope; at most "
        "STREAMCRAWL_DAGSTER_RECRAWL_MAX_PARTITIONS per tick.",
    )
    def frontier_recrawl(context: ScheduleEvaluationContext, postgres: PostgresResource) -> list[RunRequest]:
        rows = run_sync(
            stale_partitions(
                postgres,
                older_than_s=settings.recrawl_after_days * 86_400,
                limit=settings.recrawl_max_partitions,
            )
        )
        day = context.scheduled_execution_time.date().isoformat() if context.scheduled_execution_time else ""
        return [
            RunRequest(
                run_key=f"recrawl:{row['partition_key']}:{day}",
                partition_key=row["partition_key"],
                run_config={"ops": {"crawl_frontier": {"config": _frontier_config(row)}}},
                tags={"streamcrawl/recrawl_of": row["batch"]},
            )
            for row in rows
        ]

    return frontier_recrawl
