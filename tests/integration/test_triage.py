"""workers/triage.py on the real broker and PostgreSQL: filters, totals, resolved letters, replay."""

from __future__ import annotations

import time
import uuid

import asyncpg
import pytest

from tests.integration.test_dlq_replay import _replayed, _skip_existing
from workers.dlq import ReplayPolicy, replay_group
from workers.kafka import make_producer
from workers.lag import high_watermarks
from workers.ledger import BatchSpec, Candidate, Outcome, admit, create_batch, mark_published, record_outcomes
from workers.messages import DeadLetter, Scope, encode, make_headers
from workers.settings import Settings
from workers.storage.migrate import apply_migrations
from workers.topics import STORAGE_DLQ, STORAGE_SAVED
from workers.triage import LetterFilter, replay_letters, scan_letters

pytestmark = pytest.mark.integration


def _letter(batch: str, tag: str, error_class: str) -> DeadLetter:
    now = time.time()
    return DeadLetter(
        payload=f"payload-{tag}".encode(),
        key=tag.encode(),
        source_topic=STORAGE_SAVED.name,  # the terminal topic: nothing consumes it in this test
        partition=0,
        offset=0,
        stage="storage_writer",
        error_class=error_class,
        error_message=f"failed {tag}",
        attempt=1,
        first_failure_at=now,
        last_failure_at=now,
        url=f"http://{tag}.demo.test/",
        url_hash=tag,
        batch=batch,
    )


async def _ledger(settings: Settings, batch: str, tags: list[str], stored: list[str]) -> None:
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        await apply_migrations(conn)
        await create_batch(conn, BatchSpec(batch=batch, origin="cli", scope=Scope()))
        async with conn.transaction():
            await admit(
                conn,
                batch=batch,
                scope=None,
                candidates=[Candidate(f"http://{t}.demo.test/", t, f"{t}.demo.test") for t in tags],
            )
        await mark_published(conn, batch)
        async with conn.transaction():
            await record_outcomes(
                conn,
                [Outcome(batch, t, "dead", "TransientFetchError") for t in tags]
                + [Outcome(batch, t, "stored", route="fast") for t in stored],
            )
    finally:
        await conn.close()


async def test_only_unresolved_letters_are_listed_and_replayed(settings: Settings) -> None:
    run = uuid.uuid4().hex[:6]
    batch, other = f"triage-{run}", f"triage-other-{run}"
    tags = [f"t{i}-{run}" for i in range(4)]
    await _ledger(settings, batch, tags, stored=tags[:1])  # t0 was stored after its letter
    await _skip_existing(settings.kafka)
    start = (await high_watermarks(settings.kafka, [STORAGE_SAVED])).get(STORAGE_SAVED.name, {})
    letters = [
        _letter(batch, tags[0], "TransientFetchError"),
        _letter(batch, tags[1], "TransientFetchError"),
        _letter(batch, tags[1], "TransientFetchError"),  # the same URL failed twice
        _letter(batch, tags[2], "PermanentFetchError"),
        _letter(other, f"x-{run}", "TransientFetchError"),
    ]
    producer = make_producer(settings.kafka)
    await producer.start()
    try:
        for x in letters:
            await (
                await producer.send(STORAGE_DLQ.name, encode(x), key=b"k", headers=make_headers("t" * 32, 1))
            )
    finally:
        await producer.stop()

    filt = LetterFilter(batch=batch)
    [scan] = await scan_letters(settings.kafka, settings.postgres, filt, topics=[STORAGE_DLQ], limit=2)
    assert (scan.matched, scan.urls, scan.resolved_hidden) == (3, 2, 1)
    assert dict(scan.by_error_class) == {"TransientFetchError": 2, "PermanentFetchError": 1}
    assert len(scan.shown) == 2 and all(row["batch"] == batch and "payload" not in row for row in scan.shown)
    every = LetterFilter(batch=batch, include_resolved=True)
    [all_scan] = await scan_letters(settings.kafka, settings.postgres, every, topics=[STORAGE_DLQ], limit=10)
    assert (all_scan.matched, all_scan.resolved_hidden) == (4, 0)
    transient = LetterFilter(batch=batch, error_class="TransientFetchError", stage="storage_writer")
    assert transient.topics() == (STORAGE_DLQ,)
    [t_scan] = await scan_letters(
        settings.kafka, settings.postgres, transient, topics=transient.topics(), limit=10
    )
    assert (t_scan.matched, t_scan.resolved_hidden) == (2, 1)

    report = await replay_letters(
        settings.kafka,
        settings.postgres,
        STORAGE_DLQ,
        transient,
        max_records=100,
        policy=ReplayPolicy(max_attempts=5, backoff_s=0.0),
    )
    # t0: resolved (committed past, not replayed); t1 twice: replayed; t2 (another class) and the
    # other batch's letter: left for a later replay.
    assert (report.resolved, report.replayed, report.skipped, report.parked) == (1, 2, 2, 0)
    replayed = await _replayed(settings.kafka, set(tags), start)
    assert replayed == {tags[1]: 2}
    assert replay_group(STORAGE_DLQ) == report.group
