"""``dlq_sensor``: new dead letters -> one ``dlq_replay`` run per DLQ, never two at once."""

from __future__ import annotations

from aiokafka.errors import KafkaError
from dagster import (
    DagsterRunStatus,
    DefaultSensorStatus,
    JobDefinition,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from crawl_assets.aio import run_sync
from crawl_assets.jobs import DLQ_TAG
from crawl_assets.resources import KafkaResource
from crawl_assets.sensors.cursor import dump_cursor, load_cursor
from workers.lag import high_watermarks
from workers.topics import DLQ_TOPICS

__all__ = ["build_dlq_sensor", "replay_run_key"]

_IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def replay_run_key(topic: str, watermarks: dict[int, int]) -> str:
    """Unique per DLQ and log end: the same new letters never launch two replays."""
    ends = "-".join(f"{p}:{o}" for p, o in sorted(watermarks.items()))
    return f"dlq-replay:{topic}:{ends}"


def build_dlq_sensor(replay_job: JobDefinition) -> SensorDefinition:
    @sensor(
        name="dlq_sensor",
        job=replay_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests a dlq_replay run for each dead-letter topic with records beyond the "
        "cursor (per-partition high watermarks); waits while a replay of that topic is in flight.",
    )
    def dlq_sensor(context: SensorEvaluationContext, kafka: KafkaResource) -> SensorResult | SkipReason:
        try:
            now = run_sync(high_watermarks(kafka.settings(), DLQ_TOPICS))
        except (KafkaError, OSError, TimeoutError) as exc:
            return SkipReason(f"Kafka unreachable: {type(exc).__name__}: {exc}")
        state = load_cursor(context.cursor)
        runs: list[RunRequest] = []
        waiting: list[str] = []
        for topic in DLQ_TOPICS:
            seen = {int(p): int(o) for p, o in state.get(topic.name, {}).items()}
            ends = now.get(topic.name, {})
            new = sum(max(0, hw - seen.get(p, 0)) for p, hw in ends.items())
            if new == 0:
                continue
            busy = context.instance.get_runs(
                RunsFilter(job_name=replay_job.name, statuses=_IN_FLIGHT, tags={DLQ_TAG: topic.name}), limit=1
            )
            if busy:
                waiting.append(topic.name)
                continue
            runs.append(
                RunRequest(
                    run_key=replay_run_key(topic.name, ends),
                    run_config={"ops": {"replay_dead_letters": {"config": {"topic": topic.name}}}},
                    tags={DLQ_TAG: topic.name, "streamcrawl/new_letters": str(new)},
                )
            )
            state[topic.name] = {str(p): o for p, o in ends.items()}
        cursor = dump_cursor(state)
        if not runs:
            why = f"replay in flight for {', '.join(waiting)}" if waiting else "no new dead letters"
            return SensorResult(skip_reason=why, cursor=cursor)
        return SensorResult(run_requests=runs, cursor=cursor)

    return dlq_sensor
