"""workers/dlq against the real broker and PostgreSQL: replay, park, back off, keep the error chain."""

from __future__ import annotations

import json
import time
import uuid

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from workers.dlq import (
    ReplayPolicy,
    count_parked,
    postgres_history,
    postgres_parker,
    read_dead_letters,
    replay,
    replay_group,
    replay_state,
)
from workers.kafka import make_consumer, make_producer
from workers.lag import high_watermarks
from workers.messages import DeadLetter, encode, make_headers, read_headers
from workers.settings import KafkaSettings, PostgresSettings
from workers.topics import STORAGE_DLQ, STORAGE_SAVED

pytestmark = pytest.mark.integration
# The letters name storage.saved as their source: the terminal topic no test stage consumes.
SOURCE = STORAGE_SAVED
DLQ = STORAGE_DLQ


def _letter(
    tag: str,
    attempt: int,
    error_class: str = "TransientFetchError",
    *,
    age_s: float = 3600.0,
    message: str = "boom",
) -> DeadLetter:
    now = time.time() - age_s
    return DeadLetter(
        payload=f"payload-{tag}".encode(),
        key=tag.encode(),
        source_topic=SOURCE.name,
        partition=0,
        offset=0,
        stage="storage_writer",
        error_class=error_class,
        error_message=message,
        attempt=attempt,
        first_failure_at=now,
        last_failure_at=now,
        url=f"http://{tag}.demo.test/",
        url_hash=tag,
        batch="dlq-test",
    )


async def _produce(kafka: KafkaSettings, values: list[tuple[bytes, int]]) -> None:
    producer = make_producer(kafka)
    await producer.start()
    try:
        for value, attempt in values:
            await (await producer.send(DLQ.name, value, key=b"k", headers=make_headers("t" * 32, attempt)))
    finally:
        await producer.stop()


async def _skip_existing(kafka: KafkaSettings) -> None:
    """Commit the replay group at the log end so the test sees only its own letters."""
    ends = (await high_watermarks(kafka, [DLQ])).get(DLQ.name, {})
    consumer = make_consumer(kafka, group_id=replay_group(DLQ))
    await consumer.start()
    try:
        consumer.assign([TopicPartition(DLQ.name, p) for p in ends])
        await consumer.commit(
            {TopicPartition(DLQ.name, p): OffsetAndMetadata(o, "") for p, o in ends.items()}
        )
    finally:
        await consumer.stop()


async def _replayed(kafka: KafkaSettings, tags: set[str], start: dict[int, int]) -> dict[str, int]:
    """Tag -> attempt header of the replayed records found on the source topic after ``start``."""
    ends = (await high_watermarks(kafka, [SOURCE])).get(SOURCE.name, {})
    consumer = make_consumer(kafka, group_id=None)
    await consumer.start()
    found: dict[str, int] = {}
    try:
        tps = [TopicPartition(SOURCE.name, p) for p in ends]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start.get(tp.partition, 0))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
            [await consumer.position(tp) < ends[tp.partition] for tp in tps]
        ):
            for records in (await consumer.getmany(timeout_ms=300)).values():
                for r in records:
                    tag = (r.key or b"").decode()
                    if tag in tags:
                        found[tag] = read_headers(r.headers)[1]
    finally:
        await consumer.stop()
    return found


async def test_replay_republishes_retryable_parks_the_rest_and_commits(
    kafka_service: KafkaSettings, postgres_service: PostgresSettings
) -> None:
    run = uuid.uuid4().hex[:8]
    fresh, tired, other = f"fresh-{run}", f"tired-{run}", f"other-{run}"
    await _skip_existing(kafka_service)
    source_start = (await high_watermarks(kafka_service, [SOURCE])).get(SOURCE.name, {})
    await _produce(
        kafka_service,
        [
            (encode(_letter(fresh, 1)), 1),
            (encode(_letter(tired, 3)), 3),
            (b"\x00not a dead letter", 1),
            (encode(_letter(other, 1, error_class="PermanentFetchError")), 1),
        ],
    )
    pending = await read_dead_letters(kafka_service, DLQ, limit=100, from_beginning=False)
    assert [letter.url_hash for _, letter in pending] == [fresh, tired, None, other]
    policy = ReplayPolicy(max_attempts=3)

    dry = await replay(kafka_service, DLQ, max_records=100, policy=policy, park=_no_park, dry_run=True)
    assert (dry.read, dry.replayed, dry.parked, dry.committed) == (4, 1, 3, {})

    park = postgres_parker(postgres_service)
    filtered = await replay(
        kafka_service,
        DLQ,
        max_records=100,
        policy=ReplayPolicy(max_attempts=3, error_class="TransientFetchError"),
        park=park,
    )
    # The filter skips `other` and the garbage: the partition's commit stops before them.
    assert (filtered.replayed, filtered.parked, filtered.skipped) == (1, 1, 2)
    report = await replay(kafka_service, DLQ, max_records=100, policy=policy, park=park)
    # PermanentFetchError is not retryable: parked at once, never replayed.
    assert (report.replayed, report.parked, report.undecodable, report.skipped) == (0, 2, 1, 0)
    assert {p["reason"] for p in report.parked_letters} == {
        "undecodable dead letter",
        "not retryable: PermanentFetchError",
    }
    again = await replay(kafka_service, DLQ, max_records=100, policy=policy, park=park)
    assert again.read == 0, "offsets are committed after re-publishing"

    replayed = await _replayed(kafka_service, {fresh, tired, other}, source_start)
    assert replayed == {fresh: 2}
    conn = await asyncpg.connect(postgres_service.dsn())
    try:
        rows = await conn.fetch(
            "SELECT url_hash, reason, payload FROM dlq_parked WHERE url_hash = ANY($1::text[]) ORDER BY url_hash",
            [tired, other],
        )
    finally:
        await conn.close()
    assert [(r["url_hash"], r["reason"]) for r in rows] == [
        (other, "not retryable: PermanentFetchError"),
        (tired, "failed 3 times (max_attempts=3)"),
    ]
    assert rows[1]["payload"] == f"payload-{tired}".encode()
    assert await count_parked(postgres_service, dlq_topic=DLQ) >= 3


async def test_letters_wait_for_their_backoff_and_nothing_after_them_is_replayed(
    kafka_service: KafkaSettings,
) -> None:
    run = uuid.uuid4().hex[:8]
    await _skip_existing(kafka_service)
    source_start = (await high_watermarks(kafka_service, [SOURCE])).get(SOURCE.name, {})
    # Same key, same partition: a letter that failed just now, then one that failed an hour ago.
    await _produce(
        kafka_service,
        [(encode(_letter(f"recent-{run}", 2, age_s=1.0)), 2), (encode(_letter(f"old-{run}", 1)), 1)],
    )
    policy = ReplayPolicy(max_attempts=5, backoff_s=60.0)
    state = await replay_state(kafka_service, DLQ, policy=policy)
    assert state.pending == 2 and state.due_at is not None and state.due_at > time.time() + 100  # 2 x 60 s
    early = await replay(kafka_service, DLQ, max_records=100, policy=policy, park=_no_park)
    assert (early.replayed, early.waiting, early.committed) == (0, 1, {})
    assert early.next_due_at == state.due_at
    later = await replay(
        kafka_service, DLQ, max_records=100, policy=policy, park=_no_park, clock=lambda: time.time() + 130
    )
    assert later.replayed == 2 and later.waiting == 0
    replayed = await _replayed(kafka_service, {f"recent-{run}", f"old-{run}"}, source_start)
    assert replayed == {f"recent-{run}": 3, f"old-{run}": 2}  # each exactly once, attempt + 1
    assert (await replay_state(kafka_service, DLQ, policy=policy)).due_at is None


async def test_a_parked_letter_keeps_its_whole_error_chain(
    kafka_service: KafkaSettings, postgres_service: PostgresSettings
) -> None:
    tag = f"chain-{uuid.uuid4().hex[:8]}"
    policy = ReplayPolicy(max_attempts=3, backoff_s=0.0)
    park, remember = postgres_parker(postgres_service), postgres_history(postgres_service)
    await _skip_existing(kafka_service)
    failures = [
        ("TransientFetchError", "connect timeout"),
        ("TransientFetchError", "HTTP 503"),
        ("DependencyUnavailable", "S3 down"),
    ]
    for attempt, (error_class, message) in enumerate(failures, 1):
        # What the stage dead-letters each time the replayed record fails again.
        await _produce(
            kafka_service, [(encode(_letter(tag, attempt, error_class, message=message)), attempt)]
        )
        report = await replay(
            kafka_service, DLQ, max_records=100, policy=policy, park=park, remember=remember
        )
        assert (report.replayed, report.parked) == ((1, 0) if attempt < 3 else (0, 1)), attempt
    conn = await asyncpg.connect(postgres_service.dsn())
    try:
        chain = await conn.fetchval("SELECT error_chain FROM dlq_parked WHERE url_hash = $1", tag)
        left = await conn.fetchval("SELECT count(*) FROM dlq_history WHERE identity LIKE $1", f"%|{tag}")
    finally:
        await conn.close()
    steps = json.loads(chain)
    assert [(s["attempt"], s["error_class"], s["error_message"]) for s in steps] == [
        (1, "TransientFetchError", "connect timeout"),
        (2, "TransientFetchError", "HTTP 503"),
        (3, "DependencyUnavailable", "S3 down"),
    ]
    assert left == 0, "parking moves the history into the chain"


async def _no_park(items: object) -> None:
    raise AssertionError("a dry run parks nothing")
