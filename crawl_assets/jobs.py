"""Op jobs: dead-letter replay and the lag alert. (Asset jobs live in definitions.py.)"""

# No `from __future__ import annotations` here: Dagster reads the Config and resource
# annotations of decorated functions at definition time and cannot resolve strings.

from typing import Any

from dagster import (
    AssetObservation,
    Config,
    Failure,
    JobDefinition,
    MetadataValue,
    OpExecutionContext,
    job,
    op,
)
from pydantic import Field

from crawl_assets.aio import run_sync
from crawl_assets.resources import KafkaResource, PostgresResource
from crawl_assets.stages import dlq_asset_key
from workers.dlq import ReplayPolicy, ReplayReport
from workers.settings import DagsterSettings
from workers.topics import DLQ_TOPICS, Stage, topic_by_name
from workers.triage import LetterFilter, replay_letters

__all__ = ["DLQ_TAG", "DlqReplayConfig", "LagAlertConfig", "build_dlq_replay_job", "lag_alert_job"]

DLQ_TAG = "streamcrawl/dlq"
"""Run tag naming the DLQ a dlq_replay run works on (used to avoid overlapping replays)."""
_DLQ_NAMES = ", ".join(t.name for t in DLQ_TOPICS)


class DlqReplayConfig(Config):
    topic: str = Field(description=f"The dead-letter topic to replay: one of {_DLQ_NAMES}.")
    max_records: int = Field(default=10_000, description="Letters read at most in this run.")
    error_class: str | None = Field(
        default=None,
        description="Replay only letters of this error class (e.g. TransientFetchError), retryable or not.",
    )
    retryable_only: bool = Field(
        default=True,
        description="Without error_class: replay only retryable classes (RetryableError and its subclasses) "
        "and park the rest at once with their error chain.",
    )
    backoff_s: float | None = Field(
        default=None,
        description="Replay a letter no sooner than this after its last failure, doubled per attempt "
        "(0 = now); empty = STREAMCRAWL_DAGSTER_DLQ_REPLAY_BACKOFF_S.",
    )
    batch: str | None = Field(default=None, description="Replay only letters of this crawl batch.")
    stage: str | None = Field(
        default=None,
        description=f"Replay only letters of this stage ({', '.join(s.value for s in Stage)}).",
    )
    include_resolved: bool = Field(
        default=False,
        description="Replay letters whose URL was stored, unchanged or skipped since, too; by default "
        "they are committed past without a replay (counted `resolved`).",
    )
    dry_run: bool = Field(
        default=False, description="Only read and report; publish, park and commit nothing."
    )
    max_attempts: int | None = Field(
        default=None,
        description="Park letters that failed this many times; empty = STREAMCRAWL_DAGSTER_DLQ_MAX_ATTEMPTS.",
    )


def _report_metadata(report: ReplayReport) -> dict[str, Any]:
    parked = "\n".join(
        f"- p{p['partition']}@{p['offset']} {p['error_class']} attempt {p['attempt']}: {p['url'] or '-'} ({p['reason']})"
        for p in report.parked_letters[:50]
    )
    return {
        "read": report.read,
        "replayed": report.replayed,
        "parked": report.parked,
        "skipped": report.skipped,
        "resolved": report.resolved,
        "waiting": report.waiting,
        "next_due_at": report.next_due_at or 0.0,
        "undecodable": report.undecodable,
        "dry_run": report.dry_run,
        "by_error_class": MetadataValue.json(report.by_error_class),
        "replayed_to": MetadataValue.json(report.replayed_to),
        "committed": MetadataValue.json({str(k): v for k, v in report.committed.items()}),
        "parked_letters": MetadataValue.md(parked or "none"),
    }


def build_dlq_replay_job(settings: DagsterSettings) -> JobDefinition:
    @op(name="replay_dead_letters")
    def replay_dead_letters(
        context: OpExecutionContext, config: DlqReplayConfig, kafka: KafkaResource, postgres: PostgresResource
    ) -> None:
        """Re-publish due retryable dead letters to their source topic (attempt + 1); park the rest."""
        topic = topic_by_name(config.topic)
        if not topic.is_dlq:
            raise Failure(f"{topic.name} is not a dead-letter topic; choose one of {_DLQ_NAMES}")
        letters = LetterFilter(
            batch=config.batch,
            error_class=config.error_class,
            stage=config.stage,
            include_resolved=config.include_resolved,
        )
        policy = ReplayPolicy(
            max_attempts=config.max_attempts or settings.dlq_max_attempts,
            backoff_s=settings.dlq_replay_backoff_s if config.backoff_s is None else config.backoff_s,
            retryable_only=config.retryable_only,
            error_class=config.error_class,
        )
        report = run_sync(
            replay_letters(  # the code `streamcrawl dlq replay` runs
                kafka.settings(),
                postgres.settings(),
                topic,
                letters,
                max_records=config.max_records,
                policy=policy,
                dry_run=config.dry_run,
            )
        )
        context.log.info(
            "%s: read %d, replayed %d, parked %d, resolved %d, skipped %d, %d partitions waiting for a due letter%s",
            topic.name,
            report.read,
            report.replayed,
            report.parked,
            report.resolved,
            report.skipped,
            report.waiting,
            " (dry run)" if report.dry_run else "",
        )
        for letter in report.parked_letters:
            context.log.warning("parked %s: %s", topic.name, letter)
        context.log_event(AssetObservation(asset_key=dlq_asset_key(topic), metadata=_report_metadata(report)))

    @job(
        name="dlq_replay",
        description="Replay a dead-letter topic: re-publish each due letter of a retryable class to its "
        "source topic with attempt + 1 (backoff doubling per attempt), park the rest in `dlq_parked` "
        "with their error chain, commit after publishing.",
    )
    def dlq_replay() -> None:
        replay_dead_letters()

    return dlq_replay


class LagAlertConfig(Config):
    group: str = Field(description="The lagging consumer group.")
    topic: str = Field(description="The topic it consumes.")
    lag: int = Field(description="Its lag when the alert was raised.")
    threshold: int = Field(description="STREAMCRAWL_DAGSTER_LAG_ALERT_THRESHOLD at the time.")
    ticks: int = Field(description="Consecutive lagging sensor ticks.")


@op(name="raise_lag_alert")
def lag_alert_op(context: OpExecutionContext, config: LagAlertConfig) -> None:
    """Fail loudly: a failed run is the alert (one per lag episode, see kafka_lag_sensor)."""
    message = (
        f"consumer group {config.group} on {config.topic} lags by {config.lag} records "
        f"(> {config.threshold}) for {config.ticks} sensor ticks: add workers or check the stage's logs"
    )
    context.log.error(message)
    raise Failure(description=message, metadata=config.model_dump(), allow_retries=False)


@job(name="lag_alert", description="Raised by kafka_lag_sensor when a consumer group lags for too long.")
def lag_alert_job() -> None:
    lag_alert_op()
