"""``completion_sensor``: reports each ``stored_pages`` partition's latest crawl batch as it runs.

"Done" is the ledger's definition (workers/ledger/progress.py), the same the CLI and the API
use: every URL the batch ever requested — listed and discovered — is stored, unchanged,
skipped or dead-lettered. The outcomes are recorded by the discovery stage; this sensor only
reads the ledger (and, for the preview, the storage layer).

A (re-)crawl of a partition shows as **in progress**, then **complete**:

* the first tick that sees a batch open reports a materialisation of its partition with
  ``status: in progress`` (its counts and ETA so far) and a failing ``partition_complete``
  check of severity WARN: from then on the partition's current state is the new batch, and
  the previous batch's materialisation stays in the partition's history;
* while it runs, an observation when its counts moved;
* once complete, a materialisation with ``status: complete`` and the batch's metadata
  (batch id, counts and skips by reason, pages/s, duration, the DLQ breakdown by error class,
  a sample of failed URLs, a preview of a few stored pages), and both checks evaluated.

Why not Dagster's own "in progress" state: it belongs to a run that planned the
materialisation and is still running. The crawl runs in the always-on hot path, not in a run;
holding a run open for the batch's hours would show a run that does nothing, and fail the
partition whenever that run's process is restarted while the crawl goes on.

Each tick (bounded): the frontier batches not reported yet — still open, or completed after
the cursor's watermark — at most ``_BATCHES_PER_TICK``, oldest first.

Cursor: ``{"completed_after": <epoch of the newest completion reported>, "seen": {batch:
accounted}}``; ``seen`` holds open batches only, so it is bounded by what is in flight.
"""

from __future__ import annotations

from datetime import UTC

import asyncpg
from dagster import (
    AssetCheckEvaluation,
    AssetCheckSeverity,
    AssetMaterialization,
    AssetObservation,
    DefaultSensorStatus,
    MetadataValue,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from crawl_assets.aio import run_sync
from crawl_assets.resources import PostgresResource, S3Resource
from crawl_assets.sensors.batch_metadata import BatchDetails, batch_details, batch_metadata, open_store
from crawl_assets.sensors.cursor import dump_cursor, load_cursor
from crawl_assets.stages import STORED_PAGES
from workers.ledger import BatchProgress, list_progress
from workers.settings import DagsterSettings, StorageSettings

__all__ = [
    "COMPLETE_CHECK",
    "DLQ_RATE_CHECK",
    "batch_metadata",
    "build_completion_sensor",
    "completion_events",
    "started_events",
]

COMPLETE_CHECK = "partition_complete"
DLQ_RATE_CHECK = "dlq_rate_below_threshold"
_BATCHES_PER_TICK = 200

Event = AssetMaterialization | AssetObservation | AssetCheckEvaluation


def completion_events(
    p: BatchProgress, *, dlq_rate_threshold: float, details: BatchDetails | None = None
) -> list[Event]:
    """The materialisation and check evaluations reporting a complete batch."""
    completed = p.completed_at.astimezone(UTC).isoformat(timespec="seconds") if p.completed_at else "-"
    meta = {**batch_metadata(p, details), "completed_at": completed}
    assert p.partition_key is not None
    checked = {k: v for k, v in meta.items() if not isinstance(v, MetadataValue)}
    return [
        AssetMaterialization(asset_key=STORED_PAGES, partition=p.partition_key, metadata=meta),
        AssetCheckEvaluation(
            asset_key=STORED_PAGES,
            check_name=COMPLETE_CHECK,
            passed=p.complete,
            metadata={"partition": p.partition_key, **checked},
        ),
        AssetCheckEvaluation(
            asset_key=STORED_PAGES,
            check_name=DLQ_RATE_CHECK,
            passed=p.dlq_rate <= dlq_rate_threshold,
            metadata={
                "partition": p.partition_key,
                "batch": p.batch,
                "dlq_rate": round(p.dlq_rate, 4),
                "threshold": dlq_rate_threshold,
            },
        ),
    ]


def started_events(p: BatchProgress) -> list[Event]:
    """A batch seen open for the first time: its partition is in progress from now on."""
    assert p.partition_key is not None
    meta = batch_metadata(p)
    return [
        AssetMaterialization(asset_key=STORED_PAGES, partition=p.partition_key, metadata=meta),
        AssetCheckEvaluation(
            asset_key=STORED_PAGES,
            check_name=COMPLETE_CHECK,
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=f"batch {p.batch} in progress: {p.accounted} of {p.requested} URLs accounted for",
            metadata={"partition": p.partition_key, **meta},
        ),
    ]


async def _tick(
    postgres: PostgresResource, s3: S3Resource, *, completed_after: float, keys: set[str]
) -> list[tuple[BatchProgress, BatchDetails | None]]:
    async with postgres.connect() as conn:
        has_ledger = await conn.fetchval("SELECT to_regclass('crawl_urls') IS NOT NULL")
        if not has_ledger:
            return []
        # Completed since the watermark, in completion order (the watermark advances through them),
        # then the open ones, oldest first; each list bounded.
        done = await conn.fetch(
            "SELECT batch, partition_key FROM crawl_batches WHERE partition_key IS NOT NULL"
            " AND completed_at > to_timestamp($1) ORDER BY completed_at LIMIT $2",
            completed_after,
            _BATCHES_PER_TICK,
        )
        open_ = await conn.fetch(
            "SELECT batch, partition_key FROM crawl_batches WHERE partition_key IS NOT NULL"
            " AND completed_at IS NULL ORDER BY created_at LIMIT $1",
            _BATCHES_PER_TICK,
        )
        batches = [r["batch"] for r in [*done, *open_] if r["partition_key"] in keys]
        progress = await list_progress(conn, batches)
        if not any(p.complete for p in progress):
            return [(p, None) for p in progress]
        async with open_store(postgres.settings(), s3.settings(), StorageSettings()) as store:
            return [(p, await batch_details(conn, p.batch, store) if p.complete else None) for p in progress]


def build_completion_sensor(settings: DagsterSettings, frontier_keys: list[str]) -> SensorDefinition:
    keys = set(frontier_keys)

    @sensor(
        name="completion_sensor",
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Reports each stored_pages partition's latest crawl batch: a materialisation with "
        "status `in progress` when it starts (the previous one stays in history) and progress "
        "observations, then a materialisation with status `complete` once every URL it requested is "
        "stored, unchanged, skipped or dead-lettered, with the completeness and DLQ-rate checks.",
    )
    def completion_sensor(
        context: SensorEvaluationContext, postgres: PostgresResource, s3: S3Resource
    ) -> SensorResult | SkipReason:
        state = load_cursor(context.cursor)
        after = float(state.get("completed_after", 0.0))
        try:
            progress = run_sync(_tick(postgres, s3, completed_after=after, keys=keys))
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            return SkipReason(f"PostgreSQL unreachable: {type(exc).__name__}: {exc}")
        seen: dict[str, int] = dict(state.get("seen", {}))
        events: list[Event] = []
        open_now: dict[str, int] = {}
        for p, details in progress:
            if p.complete and p.completed_at is not None:
                events += completion_events(
                    p, dlq_rate_threshold=settings.dlq_rate_threshold, details=details
                )
                after = max(after, p.completed_at.timestamp())
            else:
                open_now[p.batch] = p.accounted
                if p.batch not in seen:
                    events += started_events(p)
                elif seen.get(p.batch) != p.accounted:
                    events.append(
                        AssetObservation(
                            asset_key=STORED_PAGES, partition=p.partition_key, metadata=batch_metadata(p)
                        )
                    )
        cursor = dump_cursor({"completed_after": after, "seen": open_now})
        if not events:
            return SensorResult(
                skip_reason=f"no batch completed ({len(open_now)} in progress)", cursor=cursor
            )
        context.log.info("completion: %d events for %d batches", len(events), len(progress))
        return SensorResult(asset_events=events, cursor=cursor)

    return completion_sensor
