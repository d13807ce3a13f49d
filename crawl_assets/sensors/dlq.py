"""``dlq_sensor``: a ``dlq_replay`` run per DLQ whose first pending letter is due, never two at once.

Per dead-letter topic it reads the replay group's committed offsets, the log ends and the
first pending letter of each partition (:func:`workers.dlq.replay_states`: three round trips
and at most one record per partition, so a tick stays bounded). A run is requested when a pending
letter is due under the same :class:`~workers.dlq.ReplayPolicy` the job applies: a letter
to park is due at once, a retryable one after its backoff. Letters that are not due yet
wait for a later tick — new letters alone do not launch a round of replays that would
find nothing to do.

The run key names the DLQ, the replay group's offsets, the log ends and the backoff
round of the due letter, so the same state never launches two runs, and a state that a
run could not move (it crashed) is retried one backoff period later. The cursor keeps
the last key per DLQ.
"""

from __future__ import annotations

import time

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
from workers.dlq import ReplayPolicy, ReplayState, replay_states
from workers.settings import DagsterSettings
from workers.topics import DLQ_TOPICS

__all__ = ["build_dlq_sensor", "replay_run_key"]

_IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def replay_run_key(topic: str, state: ReplayState, *, backoff_s: float) -> str:
    """Unique per DLQ, replay position, log end and backoff round of the due letter."""
    done = "-".join(f"{p}:{o}" for p, o in sorted(state.committed.items()))
    ends = "-".join(f"{p}:{o}" for p, o in sorted(state.high_watermarks.items()))
    due = state.due_at or 0.0
    round_ = int(due // backoff_s) if backoff_s > 0 else int(due)
    return f"dlq-replay:{topic}:{done}:{ends}:{round_}"


def build_dlq_sensor(replay_job: JobDefinition, settings: DagsterSettings | None = None) -> SensorDefinition:
    options = settings or DagsterSettings()
    policy = ReplayPolicy(max_attempts=options.dlq_max_attempts, backoff_s=options.dlq_replay_backoff_s)

    @sensor(
        name="dlq_sensor",
        job=replay_job,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description="Requests a dlq_replay run for each dead-letter topic whose first pending letter is "
        "due (to park at once, or a retryable one past its backoff); waits while a replay of that "
        "topic is in flight.",
    )
    def dlq_sensor(context: SensorEvaluationContext, kafka: KafkaResource) -> SensorResult | SkipReason:
        try:
            states = run_sync(replay_states(kafka.settings(), DLQ_TOPICS, policy=policy))
        except (KafkaError, OSError, TimeoutError) as exc:
            return SkipReason(f"Kafka unreachable: {type(exc).__name__}: {exc}")
        cursor = {k: v for k, v in load_cursor(context.cursor).items() if isinstance(v, str)}
        now = time.time()
        runs: list[RunRequest] = []
        waiting: list[str] = []
        later: list[str] = []
        for topic, state in states.items():
            if state.due_at is None:
                continue
            if state.due_at > now:
                later.append(f"{topic.name} in {state.due_at - now:.0f}s")
                continue
            key = replay_run_key(topic.name, state, backoff_s=policy.backoff_s)
            if cursor.get(topic.name) == key:
                continue
            busy = context.instance.get_runs(
                RunsFilter(job_name=replay_job.name, statuses=_IN_FLIGHT, tags={DLQ_TAG: topic.name}), limit=1
            )
            if busy:
                waiting.append(topic.name)
                continue
            runs.append(
                RunRequest(
                    run_key=key,
                    run_config={"ops": {"replay_dead_letters": {"config": {"topic": topic.name}}}},
                    tags={DLQ_TAG: topic.name, "streamcrawl/pending_letters": str(state.pending)},
                )
            )
            cursor[topic.name] = key
        if not runs:
            reasons = [f"replay in flight for {', '.join(waiting)}"] if waiting else []
            reasons += [f"next letter due: {', '.join(later)}"] if later else []
            return SensorResult(
                skip_reason="; ".join(reasons) or "no dead letters due", cursor=dump_cursor(cursor)
            )
        return SensorResult(run_requests=runs, cursor=dump_cursor(cursor))

    return dlq_sensor
