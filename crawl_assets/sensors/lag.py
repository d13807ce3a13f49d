"""``kafka_lag_sensor``: offsets, rates and consumer lag of every stage asset; lag alerts."""

from __future__ import annotations

import asyncio
import time

from aiokafka.errors import KafkaError
from dagster import (
    AssetCheckEvaluation,
    AssetObservation,
    DefaultSensorStatus,
    JobDefinition,
    MetadataValue,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from crawl_assets.aio import run_sync
from crawl_assets.resources import KafkaResource
from crawl_assets.sensors.cursor import dump_cursor, load_cursor
from crawl_assets.sensors.lag_state import LagSample, decide
from crawl_assets.stages import STAGE_ASSETS, StageAsset
from workers.dlq import replay_group
from workers.lag import group_lag, high_watermarks
from workers.settings import DagsterSettings, KafkaSettings
from workers.topics import REGISTRY, STAGES, Topic

__all__ = ["FRESHNESS_CHECK", "build_kafka_lag_sensor", "consumer_groups", "producer_groups"]

FRESHNESS_CHECK = "stage_fresh"
_HEARTBEAT_S = 600.0


def consumer_groups(asset: StageAsset) -> tuple[str, ...]:
    """Groups reading the asset's topics: the next stages, or the replay group of a DLQ."""
    if asset.is_dlq:
        return tuple(replay_group(t) for t in asset.topics)
    return tuple(STAGES[s].group for s in asset.consumers)


def producer_groups(asset: StageAsset) -> tuple[str, ...]:
    """Groups whose pending input becomes this asset: their lag is work on its way."""
    return tuple(STAGES[s].group for s in asset.producers)


def _group_inputs() -> dict[str, Topic]:
    out = {t.group: t.input for t in STAGES.values()}
    for asset in STAGE_ASSETS:
        if asset.is_dlq:
            out.update({replay_group(t): t for t in asset.topics})
    return out


async def take_sample(kafka: KafkaSettings) -> LagSample:
    watermarks = await high_watermarks(kafka, REGISTRY)
    lags = await asyncio.gather(
        *(group_lag(kafka, g, t, watermarks=watermarks) for g, t in _group_inputs().items())
    )
    return LagSample(now=time.time(), watermarks=watermarks, group_lag={g.group: g.total for g in lags})


def build_kafka_lag_sensor(settings: DagsterSettings, alert_job: JobDefinition) -> SensorDefinition:
    consumers = {a: consumer_groups(a) for a in STAGE_ASSETS}
    producers = {a: producer_groups(a) for a in STAGE_ASSETS}
    inputs = _group_inputs()

    @sensor(
        name="kafka_lag_sensor",
        job=alert_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Observes offsets, rates and consumer lag of every stage asset; one lag_alert run "
        "per episode of a group lagging above the threshold for several ticks.",
    )
    def kafka_lag_sensor(context: SensorEvaluationContext, kafka: KafkaResource) -> SensorResult | SkipReason:
        try:
            sample = run_sync(take_sample(kafka.settings()))
        except (KafkaError, OSError, TimeoutError) as exc:
            return SkipReason(f"Kafka unreachable: {type(exc).__name__}: {exc}")
        decisions = decide(
            load_cursor(context.cursor),
            sample,
            assets=STAGE_ASSETS,
            consumer_groups=consumers,
            producer_groups=producers,
            threshold=settings.lag_alert_threshold,
            ticks=settings.lag_alert_ticks,
            stale_after_s=settings.stale_after_s,
            heartbeat_s=_HEARTBEAT_S,
        )
        events: list[AssetObservation | AssetCheckEvaluation] = [
            AssetObservation(
                asset_key=r.asset.key,
                metadata={
                    **r.metadata,
                    "last_advanced_at": MetadataValue.timestamp(r.metadata["last_advanced_at"]),
                },
            )
            for r in decisions.observations
        ]
        events += [
            AssetCheckEvaluation(asset_key=a.key, check_name=FRESHNESS_CHECK, passed=fresh, metadata=meta)
            for a, fresh, meta in decisions.freshness
        ]
        runs = [
            RunRequest(
                run_key=alert.run_key,
                run_config={
                    "ops": {
                        "raise_lag_alert": {
                            "config": {
                                "group": alert.group,
                                "topic": inputs[alert.group].name,
                                "lag": alert.lag,
                                "threshold": settings.lag_alert_threshold,
                                "ticks": alert.ticks,
                            }
                        }
                    }
                },
                tags={"streamcrawl/lagging_group": alert.group},
            )
            for alert in decisions.alerts
        ]
        cursor = dump_cursor(decisions.state)
        if not events and not runs:
            return SensorResult(skip_reason="no offset or lag changed", cursor=cursor)
        return SensorResult(run_requests=runs, asset_events=events, cursor=cursor)

    return kafka_lag_sensor
