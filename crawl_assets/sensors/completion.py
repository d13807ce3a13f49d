"""``completion_sensor``: materialises a ``stored_pages`` partition once its batch is done.

Each tick (bounded): read the DLQ records beyond the cursor (at most ``_LETTERS_PER_TICK``
per topic) and remember the (batch, url_hash) they carry in ``crawl_dead_letters``
(idempotent upsert), then measure the published batches not yet reported (at most
``_BATCHES_PER_TICK``) with :func:`crawl_assets.batches.batch_progress` — distinct URLs
stored or dead-lettered. A complete batch yields an AssetMaterialization of its
``stored_pages`` partition plus the partition_complete and dlq_rate checks; an incomplete
one yields a progress observation when its progress moved.

Cursor: ``{"dlq": {topic: {partition: next offset}}, "done": {batch: published_at},
"seen": {batch: accounted}}``. ``done`` is keyed by partition, so it is bounded by the
number of frontier partitions; re-materialising a partition (new published_at) reports
it again when it completes again.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import asyncpg
from aiokafka.errors import KafkaError
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
from crawl_assets.batches import BatchProgress, batch_progress, published_batches, record_dead_letters
from crawl_assets.resources import KafkaResource, PostgresResource
from crawl_assets.sensors.cursor import dump_cursor, load_cursor
from crawl_assets.stages import STORED_PAGES
from workers.dlq import read_letters_after
from workers.messages import DeadLetter
from workers.settings import DagsterSettings
from workers.topics import DLQ_TOPICS

__all__ = ["COMPLETE_CHECK", "DLQ_RATE_CHECK", "build_completion_sensor", "completion_events"]

COMPLETE_CHECK = "partition_complete"
DLQ_RATE_CHECK = "dlq_rate_below_threshold"
_LETTERS_PER_TICK = 5_000
_BATCHES_PER_TICK = 200

Event = AssetMaterialization | AssetObservation | AssetCheckEvaluation


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).isoformat(timespec="seconds")


def completion_events(p: BatchProgress, *, now: float, dlq_rate_threshold: float) -> list[Event]:
    """The materialisation and check evaluations reporting a complete batch."""
    meta: dict[str, Any] = {
        "requested": p.requested,
        "stored": p.stored,
        "dead_lettered": p.dead_lettered,
        "dlq_rate": round(p.dlq_rate, 4),
        "list_id": p.list_id,
        "published_at": _iso(p.published_at),
        "completed_in_s": round(max(0.0, now - p.published_at), 1),
    }
    return [
        AssetMaterialization(asset_key=STORED_PAGES, partition=p.batch, metadata=meta),
        AssetCheckEvaluation(
            asset_key=STORED_PAGES,
            check_name=COMPLETE_CHECK,
            passed=p.complete,
            metadata={"partition": p.batch, **meta},
        ),
        AssetCheckEvaluation(
            asset_key=STORED_PAGES,
            check_name=DLQ_RATE_CHECK,
            passed=p.dlq_rate <= dlq_rate_threshold,
            metadata={
                "partition": p.batch,
                "dlq_rate": round(p.dlq_rate, 4),
                "threshold": dlq_rate_threshold,
            },
        ),
    ]


async def _tick(
    state: dict[str, Any], *, kafka: KafkaResource, postgres: PostgresResource, keys: set[str]
) -> tuple[dict[str, dict[int, int]], int, list[BatchProgress]]:
    positions: dict[str, dict[int, int]] = {}
    letters: list[tuple[str, DeadLetter]] = []
    for topic in DLQ_TOPICS:
        start = {int(p): int(o) for p, o in state.get("dlq", {}).get(topic.name, {}).items()}
        read, positions[topic.name] = await read_letters_after(
            kafka.settings(), topic, positions=start, limit=_LETTERS_PER_TICK
        )
        letters.extend((topic.name, letter) for _, letter in read)
    done: dict[str, float] = state.get("done", {})
    async with postgres.connect() as conn:
        recorded = await record_dead_letters(conn, letters)
        todo = [
            b.batch
            for b in await published_batches(conn)
            if b.batch in keys and done.get(b.batch) != round(b.published_at, 3)
        ][:_BATCHES_PER_TICK]
        progress = await batch_progress(conn, todo)
    return positions, recorded, progress


def build_completion_sensor(settings: DagsterSettings, frontier_keys: list[str]) -> SensorDefinition:
    keys = set(frontier_keys)

    @sensor(
        name="completion_sensor",
        minimum_interval_seconds=15,
        default_status=DefaultSensorStatus.RUNNING,
        description="Materialises a stored_pages partition once every URL its crawl batch published is "
        "stored or dead-lettered (distinct URL hashes), with the completeness and DLQ-rate checks.",
    )
    def completion_sensor(
        context: SensorEvaluationContext, kafka: KafkaResource, postgres: PostgresResource
    ) -> SensorResult | SkipReason:
        state = load_cursor(context.cursor)
        try:
            positions, recorded, progress = run_sync(_tick(state, kafka=kafka, postgres=postgres, keys=keys))
        except (KafkaError, OSError, TimeoutError, asyncpg.PostgresError) as exc:
            return SkipReason(f"Kafka or PostgreSQL unreachable: {type(exc).__name__}: {exc}")
        now = datetime.now(tz=UTC).timestamp()
        done: dict[str, float] = dict(state.get("done", {}))
        seen: dict[str, int] = dict(state.get("seen", {}))
        events: list[Event] = []
        for p in progress:
            if p.complete:
                events += completion_events(p, now=now, dlq_rate_threshold=settings.dlq_rate_threshold)
                done[p.batch] = round(p.published_at, 3)
                seen.pop(p.batch, None)
            elif seen.get(p.batch) != p.accounted:
                events.append(
                    AssetObservation(
                        asset_key=STORED_PAGES,
                        partition=p.batch,
                        metadata={
                            "requested": p.requested,
                            "stored": p.stored,
                            "dead_lettered": p.dead_lettered,
                        },
                    )
                )
                seen[p.batch] = p.accounted
        cursor = dump_cursor({"dlq": positions, "done": done, "seen": seen})
        if not events:
            return SensorResult(
                skip_reason=f"no batch completed ({len(progress)} in progress, {recorded} dead letters read)",
                cursor=cursor,
            )
        context.log.info("completion: %d events for %d batches", len(events), len(progress))
        return SensorResult(asset_events=events, cursor=cursor)

    return completion_sensor
