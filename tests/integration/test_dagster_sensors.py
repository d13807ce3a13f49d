"""Each sensor through build_sensor_context(...) against the real broker and PostgreSQL:
run requests, asset events and cursors, including ticks with nothing new."""

from __future__ import annotations

import dataclasses
import time
import uuid
from typing import Any

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata
from dagster import (
    AssetCheckEvaluation,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    DagsterRunStatus,
    SensorResult,
    build_sensor_context,
)
from dagster._core.storage.dagster_run import DagsterRun

from crawl_assets.aio import run_sync
from crawl_assets.jobs import DLQ_TAG, build_dlq_replay_job, lag_alert_job
from crawl_assets.resources import KafkaResource, PostgresResource, S3Resource
from crawl_assets.sensors.completion import build_completion_sensor
from crawl_assets.sensors.cursor import load_cursor
from crawl_assets.sensors.dlq import build_dlq_sensor
from crawl_assets.sensors.lag import build_kafka_lag_sensor
from crawl_assets.stages import STAGE_ASSETS
from workers.dlq import replay_group
from workers.frontier import build_request
from workers.kafka import make_consumer, make_producer
from workers.lag import high_watermarks
from workers.ledger import BatchSpec, Candidate, Outcome, admit, create_batch, mark_published, record_outcomes
from workers.messages import DeadLetter, Scope, encode, make_headers
from workers.settings import DagsterSettings, Settings
from workers.storage.migrate import apply_migrations
from workers.topics import PROCESSED_DLQ, STORAGE_DLQ, Topic

pytestmark = [
    pytest.mark.integration,
    pytest.mark.filterwarnings("ignore::dagster_shared.utils.warnings.BetaWarning"),
]


def _letter(url_hash: str, batch: str) -> DeadLetter:
    now = time.time()
    return DeadLetter(
        payload=b"x",
        source_topic="storage.saved",
        partition=0,
        offset=0,
        stage="storage_writer",
        error_class="RecordRejected",
        error_message="no",
        attempt=1,
        first_failure_at=now,
        last_failure_at=now,
        url_hash=url_hash,
        batch=batch,
    )


async def _produce(settings: Settings, topic: Topic, letters: list[DeadLetter]) -> None:
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        for letter in letters:
            await (await producer.send(topic.name, encode(letter), headers=make_headers("t" * 32)))
    finally:
        await producer.stop()


async def _commit_at_end(settings: Settings, group: str, topic: Topic) -> None:
    ends = (await high_watermarks(settings.kafka, [topic])).get(topic.name, {})
    consumer = make_consumer(settings.kafka, group_id=group)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(topic.name, p) for p in ends])
        await consumer.commit(
            {TopicPartition(topic.name, p): OffsetAndMetadata(o, "") for p, o in ends.items()}
        )
    finally:
        await consumer.stop()


def _kafka(settings: Settings) -> dict[str, Any]:
    return {"kafka": KafkaResource.from_settings(settings.kafka)}


def test_dlq_sensor_requests_one_replay_when_a_letter_is_due(settings: Settings) -> None:
    sensor = build_dlq_sensor(
        build_dlq_replay_job(DagsterSettings()), DagsterSettings(dlq_replay_backoff_s=60)
    )
    instance = DagsterInstance.ephemeral()

    def tick(cursor: str | None) -> SensorResult:
        result = sensor(build_sensor_context(instance=instance, cursor=cursor, resources=_kafka(settings)))
        assert isinstance(result, SensorResult)
        return result

    # Whatever other tests left in the DLQs is replayed (or parked) by the replay group: skip it.
    run_sync(_commit_at_end(settings, replay_group(PROCESSED_DLQ), PROCESSED_DLQ))
    baseline = tick(None).cursor
    quiet = tick(baseline)
    assert not [r for r in quiet.run_requests or [] if r.tags[DLQ_TAG] == PROCESSED_DLQ.name]

    # A retryable letter that failed just now is not due: no run for it yet.
    fresh = dataclasses.replace(_letter("a", "b"), error_class="TransientFetchError")
    run_sync(_produce(settings, PROCESSED_DLQ, [fresh]))
    early = tick(baseline)
    assert not [r for r in early.run_requests or [] if r.tags[DLQ_TAG] == PROCESSED_DLQ.name]
    assert early.skip_reason is not None and f"{PROCESSED_DLQ.name} in" in (
        early.skip_reason.skip_message or ""
    )

    # A letter of a class that is never retried is due at once (to be parked); so is an old one.
    run_sync(_commit_at_end(settings, replay_group(PROCESSED_DLQ), PROCESSED_DLQ))
    old = dataclasses.replace(
        _letter("c", "b"), error_class="TransientFetchError", last_failure_at=time.time() - 600
    )
    run_sync(_produce(settings, PROCESSED_DLQ, [_letter("b", "b"), old]))
    due = tick(baseline)
    requests = [r for r in due.run_requests or [] if r.tags[DLQ_TAG] == PROCESSED_DLQ.name]
    assert len(requests) == 1 and requests[0].run_key and PROCESSED_DLQ.name in requests[0].run_key
    assert requests[0].run_config["ops"]["replay_dead_letters"]["config"] == {"topic": PROCESSED_DLQ.name}
    assert requests[0].tags["streamcrawl/pending_letters"] == "2"
    again = tick(due.cursor)  # nothing changed since: the same state never launches two runs
    assert not [r for r in again.run_requests or [] if r.tags[DLQ_TAG] == PROCESSED_DLQ.name]

    # While a replay of that DLQ is in flight, due letters wait (the cursor keeps them due).
    instance.add_run(
        DagsterRun(
            job_name="dlq_replay",
            run_id=uuid.uuid4().hex,
            status=DagsterRunStatus.STARTED,
            tags={DLQ_TAG: PROCESSED_DLQ.name},
        )
    )
    waiting = tick(baseline)
    assert not [r for r in waiting.run_requests or [] if r.tags[DLQ_TAG] == PROCESSED_DLQ.name]
    assert waiting.skip_reason is None or "in flight" in (waiting.skip_reason.skip_message or "")
    assert load_cursor(waiting.cursor).get(PROCESSED_DLQ.name) == load_cursor(baseline).get(
        PROCESSED_DLQ.name
    )


def test_lag_sensor_observes_and_alerts_once_per_episode(settings: Settings) -> None:
    group = replay_group(STORAGE_DLQ)  # lag of a DLQ's replay group: letters not replayed yet
    sensor = build_kafka_lag_sensor(DagsterSettings(lag_alert_threshold=0, lag_alert_ticks=2), lag_alert_job)

    def tick(cursor: str | None) -> SensorResult:
        result = sensor(build_sensor_context(cursor=cursor, resources=_kafka(settings)))
        assert isinstance(result, SensorResult)
        return result

    def alerts(result: SensorResult) -> list[str]:
        return [
            r.run_key or ""
            for r in result.run_requests or []
            if r.tags.get("streamcrawl/lagging_group") == group
        ]

    run_sync(_commit_at_end(settings, group, STORAGE_DLQ))
    run_sync(_produce(settings, STORAGE_DLQ, [_letter("c", "d")] * 3))
    first = tick(None)
    observed = {
        e.asset_key.to_user_string(): e for e in first.asset_events if isinstance(e, AssetObservation)
    }
    assert set(observed) == {a.key.to_user_string() for a in STAGE_ASSETS}
    assert observed["storage_dlq"].metadata["consumer_lag"].value == 3
    checks = [e for e in first.asset_events if isinstance(e, AssetCheckEvaluation)]
    assert {e.asset_key.to_user_string() for e in checks} == {
        "raw_pages",
        "routed_pages",
        "processed_pages",
        "stored_pages",
    }
    assert alerts(first) == []
    second = tick(first.cursor)
    assert len(alerts(second)) == 1
    request = next(r for r in second.run_requests or [] if r.tags.get("streamcrawl/lagging_group") == group)
    assert request.run_config["ops"]["raise_lag_alert"]["config"]["lag"] == 3
    third = tick(second.cursor)
    assert alerts(third) == []  # same episode: no second run
    assert not any(
        isinstance(e, AssetObservation) and e.asset_key.to_user_string() == "storage_dlq"
        for e in third.asset_events
    )

    run_sync(_commit_at_end(settings, group, STORAGE_DLQ))  # replayed: the episode ends
    calm = tick(third.cursor)
    assert alerts(calm) == [] and load_cursor(calm.cursor)["groups"][group] == {"ticks": 0}
    run_sync(_produce(settings, STORAGE_DLQ, [_letter("e", "f")]))
    again = tick(tick(calm.cursor).cursor)
    assert len(alerts(again)) == 1 and alerts(again) != alerts(second)


async def _open_batch(settings: Settings, batch: str, partition: str, requests: list[Any]) -> None:
    """A published frontier batch with ``requests`` listed, as the frontier asset leaves it."""
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        await apply_migrations(conn)
        await create_batch(
            conn, BatchSpec(batch=batch, origin="dagster", scope=Scope(), partition_key=partition)
        )
        async with conn.transaction():
            await admit(
                conn,
                batch=batch,
                scope=None,
                candidates=[Candidate(r.url, r.url_hash, r.host, 0, rank=r.rank) for r in requests],
            )
        await mark_published(conn, batch)
    finally:
        await conn.close()


async def _outcomes(settings: Settings, outcomes: list[Outcome]) -> None:
    """What the discovery stage records as pages are stored and letters dead-lettered."""
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        async with conn.transaction():
            await record_outcomes(conn, outcomes)
    finally:
        await conn.close()


def test_completion_sensor_materialises_a_partition_once_complete(settings: Settings) -> None:
    keys = ["001-005", "006-010"]
    sensor = build_completion_sensor(DagsterSettings(dlq_rate_threshold=0.3), keys)
    resources = {
        "postgres": PostgresResource.from_settings(settings.postgres),
        "s3": S3Resource.from_settings(settings.s3),
    }
    run = uuid.uuid4().hex[:6]
    batches = [f"{keys[0]}@{run}", f"{keys[1]}@{run}"]
    done_reqs = [
        build_request(f"http://c{i}-{run}.demo.test/", batch=batches[0], rank=i) for i in range(1, 6)
    ]
    open_reqs = [
        build_request(f"http://o{i}-{run}.demo.test/", batch=batches[1], rank=i + 5) for i in range(1, 6)
    ]
    run_sync(_open_batch(settings, batches[0], keys[0], done_reqs))
    run_sync(_open_batch(settings, batches[1], keys[1], open_reqs))

    def tick(cursor: str | None) -> SensorResult:
        result = sensor(build_sensor_context(cursor=cursor, resources=resources))
        assert isinstance(result, SensorResult)
        return result

    def stored(batch: str, reqs: list[Any]) -> list[Outcome]:
        return [Outcome(batch, r.url_hash, "stored", route="fast") for r in reqs]

    # Batch 1: 3 stored, 2 dead-lettered (one of them twice: a redelivered letter), and one
    # stored page also dead-lettered earlier (stored wins). Batch 2: 1 of 5 stored.
    dead = [Outcome(batches[0], r.url_hash, "dead", "PermanentFetchError") for r in done_reqs[2:]]
    run_sync(_outcomes(settings, dead + dead[-1:]))
    run_sync(_outcomes(settings, stored(batches[0], done_reqs[:3]) + stored(batches[1], open_reqs[:1])))
    first = tick(None)
    mats = [e for e in first.asset_events if isinstance(e, AssetMaterialization)]
    # The complete batch is materialised; the open one is reported in progress (first sight).
    assert [m.partition for m in mats] == keys
    meta = {k: v.value for k, v in mats[0].metadata.items()}
    assert (meta["batch"], meta["requested"], meta["stored"], meta["dead_lettered"]) == (batches[0], 5, 3, 2)
    assert meta["status"] == "complete" and meta["dead_by_reason"] == "PermanentFetchError: 2"
    started = {k: v.value for k, v in mats[1].metadata.items()}
    assert (started["status"], started["batch"], started["stored"], started["in_flight"]) == (
        "in progress",
        batches[1],
        1,
        4,
    )
    checks = {
        (e.metadata["partition"].value, e.check_name): e.passed
        for e in first.asset_events
        if isinstance(e, AssetCheckEvaluation)
    }
    assert checks == {
        (keys[0], "partition_complete"): True,
        (keys[0], "dlq_rate_below_threshold"): False,  # 40% > 30%
        (keys[1], "partition_complete"): False,  # in progress (severity WARN)
    }
    assert not [e for e in first.asset_events if isinstance(e, AssetObservation)]

    quiet = tick(first.cursor)
    assert quiet.asset_events == [] and quiet.skip_reason is not None

    # Redeliveries change nothing: same pages stored again, same letters dead-lettered again.
    run_sync(
        _outcomes(settings, stored(batches[0], done_reqs[:3]) + stored(batches[1], open_reqs[:1]) + dead)
    )
    assert tick(quiet.cursor).asset_events == []

    run_sync(_outcomes(settings, stored(batches[1], open_reqs[1:])))
    last = tick(quiet.cursor)
    assert [e.partition for e in last.asset_events if isinstance(e, AssetMaterialization)] == [keys[1]]
