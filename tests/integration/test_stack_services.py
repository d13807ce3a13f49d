"""The session services behave like the real thing: S3, PostgreSQL, and the broker end to end."""

from __future__ import annotations

import hashlib
import io
import os
import time

import asyncpg
import pytest
from aiokafka import ConsumerRecord, TopicPartition

from tests.helpers.kafka import consume, produce
from workers.kafka import make_consumer
from workers.lag import high_watermarks
from workers.messages import RawPage, compress_html, decode, encode, make_headers, new_trace_id, read_headers
from workers.provision import provision
from workers.settings import KafkaSettings, PostgresSettings, S3Settings
from workers.stack.seaweed import s3_client
from workers.topics import RAW_PAGE, REGISTRY

pytestmark = pytest.mark.integration


def _html_page(size: int) -> bytes:
    """About ``size`` bytes of varied, realistic HTML (random words, so zstd can't erase it)."""
    words = [os.urandom(6).hex() for _ in range(2000)]
    parts = [b"<!doctype html><html><head><title>big</title></head><body>"]
    total, i = 0, 0
    while total < size:
        chunk = f"<p id='p{i}'>{' '.join(words[(i * 7 + j) % 2000] for j in range(12))}</p>\n".encode()
        parts.append(chunk)
        total += len(chunk)
        i += 1
    parts.append(b"</body></html>")
    return b"".join(parts)


async def test_one_megabyte_page_survives_the_broker_byte_identical(kafka_service: KafkaSettings) -> None:
    html = _html_page(1024 * 1024)
    assert len(html) >= 1024 * 1024
    page = RawPage(
        url="http://big.test/page",
        url_hash=hashlib.blake2b(b"http://big.test/page", digest_size=16).hexdigest(),
        host="big.test",
        final_url="http://big.test/page",
        status=200,
        content_type="text/html",
        html_zstd=compress_html(html),
        content_hash=hashlib.blake2b(html, digest_size=16).hexdigest(),
        fetched_at=time.time(),
        body_bytes=len(html),
    )
    payload = encode(page)
    trace = new_trace_id()
    key = b"big.test-" + trace.encode()
    # The session's topics are shared with other tests: read only what is produced from now on.
    start = (await high_watermarks(kafka_service, [RAW_PAGE])).get(RAW_PAGE.name, {})
    await produce(kafka_service, RAW_PAGE, [payload], key=key, headers=make_headers(trace, 2))
    consumer = make_consumer(kafka_service, group_id=None)
    await consumer.start()
    mine: list[ConsumerRecord[bytes, bytes]] = []
    try:
        tps = [TopicPartition(RAW_PAGE.name, p) for p in sorted(start)]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start[tp.partition])
        deadline = time.monotonic() + 30
        while not mine and time.monotonic() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            mine = [r for records in batches.values() for r in records if r.key == key]
    finally:
        await consumer.stop()
    assert len(mine) == 1
    record = mine[0]
    assert record.value == payload
    assert read_headers(record.headers) == (trace, 2)
    back = decode(record.value, RawPage)
    assert back.html_bytes() == html
    assert back == page


async def test_provisioning_is_idempotent_on_the_real_broker(kafka_service: KafkaSettings) -> None:
    report = await provision(kafka_service)
    assert report.created == ()
    assert set(report.existing) == {t.name for t in REGISTRY}
    assert report.drift == ()


async def test_consumer_group_resumes_after_commit(kafka_service: KafkaSettings) -> None:
    from workers.topics import STORAGE_SAVED

    values = [f"v{i}-{new_trace_id()}".encode() for i in range(3)]
    group = "test-group-" + new_trace_id()
    await produce(kafka_service, STORAGE_SAVED, values, key=b"same-key")
    first = await consume(kafka_service, STORAGE_SAVED, count=1, group_id=group)
    rest = await consume(kafka_service, STORAGE_SAVED, count=2, group_id=group)
    # The group resumes after what it committed, never re-reading the first record.
    seen = {(r.partition, r.offset) for r in rest}
    assert (first[0].partition, first[0].offset) not in seen


def test_s3_service_stores_objects(s3_service: S3Settings) -> None:
    client = s3_client(s3_service)
    assert client.bucket_exists(s3_service.bucket)
    client.put_object(s3_service.bucket, "probe/hello.txt", io.BytesIO(b"hello"), 5)
    assert client.get_object(s3_service.bucket, "probe/hello.txt").read() == b"hello"


async def test_postgres_service_has_an_empty_database(postgres_service: PostgresSettings) -> None:
    conn = await asyncpg.connect(postgres_service.dsn())
    try:
        assert await conn.fetchval("SELECT current_database()") == postgres_service.database
        assert await conn.fetchval("SELECT current_setting('server_version_num')::int / 10000") == 15
    finally:
        await conn.close()
