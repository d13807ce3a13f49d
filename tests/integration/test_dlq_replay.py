"""workers/dlq.py against the real broker and PostgreSQL: replay, park, commit after publish."""

from __future__ import annotations

import time
import uuid

import asyncpg
import pytest
from aiokafka import TopicPartition
from aiokafka.structs import OffsetAndMetadata

from workers.dlq import count_parked, postgres_parker, read_dead_letters, replay, replay_group
from workers.kafka import make_consumer, make_producer
from workers.lag import high_watermarks
from workers.messages import DeadLetter, encode, make_headers, read_headers
from workers.settings import KafkaSettings, PostgresSettings
from workers.topics import STORAGE_DLQ, STORAGE_SAVED

pytestmark = pytest.mark.integration
# The letters name storage.saved as their source: the terminal topic no test stage consumes.
SOURCE = STORAGE_SAVED
DLQ = STORAGE_DLQ


def _letter(tag: str, attempt: int, error_class: str = "TransientFetchError") -> DeadLetter:
    now = time.time()
    return DeadLetter(
        payload=f"payload-{tag}".encode(),
        key=tag.encode(),
        source_topic=SOURCE.name,
        partition=0,
        offset=0,
        stage="storage_writer",
        error_class=error_class,
        error_message="boom",
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


async def test_replay_republishes_parks_and_commits(
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

    dry = await replay(kafka_service, DLQ, max_records=100, max_attempts=3, park=_no_park, dry_run=True)
    assert (dry.read, dry.replayed, dry.parked, dry.committed) == (4, 2, 2, {})

    filtered = await replay(
        kafka_service,
        DLQ,
        max_records=100,
        max_attempts=3,
        park=postgres_parker(postgres_service),
        error_class="TransientFetchError",
    )
    # `other` is skipped: its partition's commit stops before it, so a later replay still sees it.
    assert (filtered.replayed, filtered.parked, filtered.skipped) == (1, 1, 2)
    report = await replay(
        kafka_service, DLQ, max_records=100, max_attempts=3, park=postgres_parker(postgres_service)
    )
    assert (report.replayed, report.parked, report.undecodable, report.skipped) == (1, 1, 1, 0)
    again = await replay(
        kafka_service, DLQ, max_records=100, max_attempts=3, park=postgres_parker(postgres_service)
    )
    assert again.read == 0, "offsets are committed after re-publishing"

    replayed = await _replayed(kafka_service, {fresh, tired, other}, source_start)
    assert replayed[fresh] == 2 and replayed[other] == 2 and tired not in replayed
    conn = await asyncpg.connect(postgres_service.dsn())
    try:
        rows = await conn.fetch("SELECT url_hash, reason, payload FROM dlq_parked WHERE url_hash = $1", tired)
    finally:
        await conn.close()
    assert (
        len(rows) == 1
        and "max_attempts=3" in rows[0]["reason"]
        and rows[0]["payload"] == f"payload-{tired}".encode()
    )
    assert await count_parked(postgres_service, dlq_topic=DLQ) >= 2


async def _no_park(items: object) -> None:
    raise AssertionError("a dry run parks nothing")
