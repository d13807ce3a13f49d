"""Schedules. Off by default: turning one on is an operator's decision."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from dagster import (
    DefaultScheduleStatus,
    RunRequest,
    ScheduleDefinition,
    ScheduleEvaluationContext,
    schedule,
)

from crawl_assets.partitions import TRANCO_PARTITIONS

if TYPE_CHECKING:
    from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

__all__ = ["build_tranco_weekly_refresh"]


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
