"""Poison on the real broker: a record that kills its process, and a record too large to produce.

Each test has a broker of its own, so the consumer groups and their crash markers start empty.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.helpers.crash_router import CRASH_MARK
from tests.helpers.kafka import produce, read_all
from tests.helpers.pipeline import Pipeline
from tests.helpers.services import own_broker
from workers.lifecycle import Incoming, Worker
from workers.messages import DeadLetter, RawPage, compress_html, decode, encode, peek
from workers.settings import KafkaSettings, Settings, WorkerSettings
from workers.topics import PROCESS_FAST, PROCESS_RICH, RAW_PAGE, RAW_PAGE_DLQ, Stage

pytestmark = pytest.mark.integration

_TEXT = "A page with enough readable text to be routed to the fast path without JavaScript. " * 8


@pytest.fixture
def own_kafka(tmp_path: Path) -> Iterator[KafkaSettings]:
    with own_broker(tmp_path / "kafka") as (_broker, kafka):
        yield kafka


def _page(url: str) -> bytes:
    host = url.split("/")[2]
    html = f"<html><body><article><h1>{url}</h1><p>{_TEXT}</p></article></body></html>".encode()
    return encode(
        RawPage(
            url=url,
            url_hash=hashlib.blake2b(url.encode(), digest_size=16).hexdigest(),
            host=host,
            final_url=url,
            status=200,
            content_type="text/html",
            html_zstd=compress_html(html),
            content_hash=hashlib.blake2b(html, digest_size=16).hexdigest(),
            fetched_at=time.time(),
            body_bytes=len(html),
            batch="crash-test",
        )
    )


async def _produce_pages(kafka: KafkaSettings, urls: Sequence[str]) -> None:
    for url in urls:  # keyed by host like the ingestor does: one host's pages share a partition
        await produce(kafka, RAW_PAGE, [_page(url)], key=url.split("/")[2].encode())


async def _urls_in(kafka: KafkaSettings, *topics: object) -> set[str]:
    records = await read_all(kafka, [t for t in (PROCESS_FAST, PROCESS_RICH) if t in topics])
    return {str(peek(r.value).get("url")) for r in records}


async def _letters(kafka: KafkaSettings) -> list[DeadLetter]:
    return [decode(r.value, DeadLetter) for r in await read_all(kafka, [RAW_PAGE_DLQ])]


async def _wait_for(predicate: object, *, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if await predicate():  # type: ignore[operator]
            return
        await asyncio.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def test_a_record_that_kills_its_process_is_dead_lettered_after_n_deaths_while_later_records_flow(
    own_kafka: KafkaSettings, tmp_path: Path
) -> None:
    max_crashes = 2
    settings = Settings(kafka=own_kafka, worker=WorkerSettings(max_crashes=max_crashes))
    before = [f"http://h{i % 5}.crash.test/p/{i}" for i in range(20)]
    poison = f"http://h2.crash.test/{CRASH_MARK}"
    after = [f"http://h{i % 5}.crash.test/q/{i}" for i in range(20)]
    await _produce_pages(own_kafka, [*before, poison, *after])
    pipeline = Pipeline(settings, log_dir=tmp_path / "logs")
    router = "tests.helpers.crash_router"
    pipeline.supervise(router)
    try:

        async def dead_lettered() -> bool:
            return any(letter.url == poison for letter in await _letters(own_kafka))

        await _wait_for(dead_lettered, timeout_s=120, what="the poison record's dead letter")
        # The daemon stays up, and records produced after the poison are routed.
        later = [f"http://h{i % 5}.crash.test/later/{i}" for i in range(10)]
        await _produce_pages(own_kafka, later)
        expected = {*before, *after, *later}

        async def all_routed() -> bool:
            return expected <= await _urls_in(own_kafka, PROCESS_FAST, PROCESS_RICH)

        await _wait_for(all_routed, timeout_s=60, what="every other record to be routed")
        assert pipeline.alive(router)
    finally:
        pipeline.stop()
    logs = pipeline.logs(router, tail=200)
    letters = [letter for letter in await _letters(own_kafka) if letter.url == poison]
    assert len(letters) == 1, logs
    letter = letters[0]
    assert letter.error_class == "WorkerCrashed" and letter.attempt == max_crashes, letter
    assert f"died {max_crashes} times" in letter.error_message
    assert decode(letter.payload, RawPage).url == poison  # the original record, byte for byte
    # One death nobody could be blamed for (several records were in flight), one during the
    # recovery round that handled them again as usual, then one per isolated attempt:
    # max_crashes + 2 in all, each the crash itself (status 70).
    assert pipeline.exits[router] == [70] * (max_crashes + 2), (pipeline.exits, logs)
    assert poison not in await _urls_in(own_kafka, PROCESS_FAST, PROCESS_RICH)


class OversizedRouter(Worker):
    """Emits a record larger than any topic accepts for pages marked ``huge``."""

    stage = Stage.ROUTER

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            url = str(peek(item.record.value).get("url"))
            value = b"x" * (17 * 1024 * 1024) if "huge" in url else item.record.value or b""
            await self.emit_raw(PROCESS_FAST, value, key=None, trace_id=item.trace_id, attempt=1, source=item)


async def _run_until(worker: Worker, predicate: object, *, timeout_s: float) -> None:
    task = asyncio.create_task(worker.run())
    try:
        await _wait_for(predicate, timeout_s=timeout_s, what="the worker's outputs")
    finally:
        await worker.stop()
        await task


async def test_a_record_too_large_to_produce_is_dead_lettered_not_retried_forever(
    own_kafka: KafkaSettings,
) -> None:
    urls = ["http://a.big.test/1", "http://a.big.test/huge", "http://a.big.test/3"]
    await _produce_pages(own_kafka, urls)
    worker = OversizedRouter(Settings(kafka=own_kafka))

    async def settled() -> bool:
        fast = await read_all(own_kafka, [PROCESS_FAST])
        return len(fast) == 2 and len(await _letters(own_kafka)) == 1

    await _run_until(worker, settled, timeout_s=60)
    [letter] = await _letters(own_kafka)
    assert letter.url == "http://a.big.test/huge" and letter.error_class == "ProduceRefused"
    assert "process.fast refused the output record" in letter.error_message
    assert "MessageSizeTooLargeError" in letter.error_message
    assert decode(letter.payload, RawPage).url == letter.url  # the input, byte for byte
