"""``completion_sensor``: materialises a ``stored_pages`` partition once its latest batch is done.

"Done" is the ledger's definition (workers/ledger/progress.py), the same the CLI and the API
use: every URL the batch ever requested — listed and discovered — is stored, unchanged,
skipped or dead-lettered. The outcomes are recorded by the discovery stage; this sensor only
reads the ledger.

Each tick (bounded): the frontier batches that are not reported yet — still open, or completed
after the cursor's watermark — at most ``_BATCHES_PER_TICK``, oldest first. A complete batch
yields an AssetMaterialization of its partition (with the batch's metadata) plus the
partition_complete and dlq_rate checks; an open one yields a progress observation when its
counts moved.

Cursor: ``{"completed_after": <epoch of the newest completion reported>, "seen": {batch:
accounted}}``; ``seen`` holds open batches only, so it is bounded by what is in flight.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from dagster import (
    AssetCheckEvaluation,
    AssetMaterialization,
    AssetObservation,
    DefaultSensorStatus,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from crawl_assets.aio import run_sync
from crawl_assets.resources import PostgresResource
from crawl_assets.sensors.cursor import dump_cursor, load_cursor
from crawl_assets.stages import STORED_PAGES
from workers.ledger import BatchProgress, list_progress
from workers.settings import DagsterSettings

__all__ = [
    "COMPLETE_CHECK",
    "DLQ_RATE_CHECK",
    "batch_metadata",
    "build_completion_sensor",
    "completion_events",
]

COMPLETE_CHECK = "partition_complete"
DLQ_RATE_CHECK = "dlq_rate_below_threshold"
_BATCHES_PER_TICK = 200

Event = AssetMaterialization | AssetObservation | AssetCheckEvaluation


def _iso(ts: datetime | None) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds") if ts is not None else "-"


def batch_metadata(p: BatchProgress) -> dict[str, Any]:
    """What a stored_pages partition shows about its batch (materialisation and observations)."""
    meta: dict[str, Any] = {
        "batch": p.batch,
        "requested": p.requested,
        "discovered": p.discovered,
        "stored": p.stored,
        "unchanged": p.unchanged,
        "skipped": p.skipped,
        "dead_lettered": p.dead_lettered,
        "in_flight": p.in_flight,
        "dlq_rate": round(p.dlq_rate, 4),
        "pages_per_s": round(p.pages_per_s, 2),
        "published_at": _iso(p.published_at),
        "duration_s": round(p.duration_s or 0.0, 1),
    }
    for name, counts in (("skipped_by_reason", p.skipped_by_reason), ("dead_by_reason", p.dead_by_reason)):
        if counts:
            meta[name] = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1]))
    return meta


def completion_events(p: BatchProgress, *, dlq_rate_threshold: float) -> list[Event]:
    """The materialisation and check evaluations reporting a complete batch."""
    meta = {**batch_metadata(p), "completed_at": _iso(p.completed_at)}
    assert p.partition_key is not None
    return [
        AssetMaterialization(asset_key=STORED_PAGES, partition=p.partition_key, metadata=meta),
        AssetCheckEvaluation(
            asset_key=STORED_PAGES,
            check_name=COMPLETE_CHECK,
            passed=p.complete,
            metadata={"partition": p.partition_key, **meta},
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


async def _tick(postgres: PostgresResource, *, completed_after: float, keys: set[str]) -> list[BatchProgress]:
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
        return await list_progress(conn, batches)


def build_completion_sensor(settings: DagsterSettings, frontier_keys: list[str]) -> SensorDefinition:
    keys = set(frontier_keys)

    @sensor(
        name="completion_sensor",
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Materialises a stored_pages partition once every URL its latest crawl batch "
        "requested (listed and discovered) is stored, unchanged, skipped or dead-lettered, with the "
        "completeness and DLQ-rate checks; reports progress of open batches as observations.",
    )
    def completion_sensor(
        context: SensorEvaluationContext, postgres: PostgresResource
    ) -> SensorResult | SkipReason:
        state = load_cursor(context.cursor)
        after = float(state.get("completed_after", 0.0))
        try:
            progress = run_sync(_tick(postgres, completed_after=after, keys=keys))
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            return SkipReason(f"PostgreSQL unreachable: {type(exc).__name__}: {exc}")
        seen: dict[str, int] = dict(state.get("seen", {}))
        events: list[Event] = []
        open_now: dict[str, int] = {}
        for p in progress:
            if p.complete and p.completed_at is not None:
                events += completion_events(p, dlq_rate_threshold=settings.dlq_rate_threshold)
                after = max(after, p.completed_at.timestamp())
            else:
                open_now[p.batch] = p.accounted
                if seen.get(p.batch) != p.accounted:
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
