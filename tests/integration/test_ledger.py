"""The crawl ledger on a real PostgreSQL: URL-seen store, budgets under concurrency, outcomes, counters."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from workers.ledger import (
    BatchSpec,
    Candidate,
    Outcome,
    admit,
    create_batch,
    mark_published,
    read_progress,
    record_outcomes,
)
from workers.messages import Scope
from workers.settings import PostgresSettings
from workers.storage.migrate import apply_migrations
from workers.urls import url_hash

pytestmark = pytest.mark.integration


@pytest.fixture
async def pool(postgres_service: PostgresSettings) -> AsyncIterator[asyncpg.Pool]:
    pool = await asyncpg.create_pool(postgres_service.dsn(), min_size=1, max_size=8)
    async with pool.acquire() as conn:
        await apply_migrations(conn)
    try:
        yield pool
    finally:
        await pool.close()


def cand(url: str, *, depth: int = 1, kind: str = "page", source: str = "link") -> Candidate:
    host = url.split("/")[2]
    return Candidate(url=url, url_hash=url_hash(url), host=host, depth=depth, kind=kind, source=source)


async def new_batch(pool: asyncpg.Pool, scope: Scope) -> str:
    batch = f"t-{uuid.uuid4().hex[:8]}"
    async with pool.acquire() as conn:
        await create_batch(conn, BatchSpec(batch=batch, origin="cli", scope=scope))
        await mark_published(conn, batch)
    return batch


async def admit_in_tx(pool: asyncpg.Pool, batch: str, scope: Scope, cands: list[Candidate]) -> list[str]:
    async with pool.acquire() as conn, conn.transaction():
        result = await admit(conn, batch=batch, scope=scope, candidates=cands)
    return [c.url for c, _ in result.admitted]


async def test_a_url_is_new_to_the_batch_exactly_once(pool: asyncpg.Pool) -> None:
    scope = Scope(max_depth=2)
    batch = await new_batch(pool, scope)
    urls = [f"http://a.test/{i}" for i in range(50)]
    first = await admit_in_tx(pool, batch, scope, [cand(u) for u in urls + urls[:10]])
    assert first == urls  # duplicates within one call collapse
    again = await asyncio.gather(
        *(admit_in_tx(pool, batch, scope, [cand(u) for u in urls]) for _ in range(4))
    )
    assert all(a == [] for a in again)
    p = await read_progress(pool, batch)
    assert p is not None and (p.requested, p.discovered, p.listed) == (50, 50, 0)


async def test_budgets_hold_under_concurrent_admission(pool: asyncpg.Pool) -> None:
    scope = Scope(max_depth=3, max_pages_per_host=30, max_pages=50)
    batch = await new_batch(pool, scope)
    chunks = [
        [cand(f"http://{h}.test/{w}-{i}") for i in range(20)] for w in range(6) for h in ("a", "b", "c")
    ]
    admitted = await asyncio.gather(*(admit_in_tx(pool, batch, scope, c) for c in chunks))
    flat = [u for a in admitted for u in a]
    assert len(flat) == 50, "the batch budget binds exactly"
    per_host = {h: sum(1 for u in flat if u.startswith(f"http://{h}.test/")) for h in "abc"}
    assert all(n <= 30 for n in per_host.values()), per_host
    p = await read_progress(pool, batch)
    assert p is not None and p.requested == 50


async def test_outcomes_move_counters_once_and_never_backwards(pool: asyncpg.Pool) -> None:
    scope = Scope(max_depth=1)
    batch = await new_batch(pool, scope)
    urls = [f"http://a.test/{i}" for i in range(4)]
    await admit_in_tx(pool, batch, scope, [cand(u) for u in urls])
    h = [url_hash(u) for u in urls]

    async def record(outcomes: list[Outcome]) -> None:
        async with pool.acquire() as conn, conn.transaction():
            await record_outcomes(conn, outcomes)

    await record(
        [Outcome(batch, h[0], "stored", route="fast"), Outcome(batch, h[1], "dead", "PermanentFetchError")]
    )
    await record([Outcome(batch, h[0], "stored", route="fast")])  # a redelivery: no change
    await record([Outcome(batch, h[0], "dead", "X")])  # worse verdict after stored: ignored
    p = await read_progress(pool, batch)
    assert p is not None
    assert (p.stored, p.dead_lettered, p.fast, p.in_flight, p.complete) == (1, 1, 1, 2, False)
    assert p.dead_by_reason == {"PermanentFetchError": 1}
    # A replay stores the dead URL: it moves from dead to stored, counted once.
    await record(
        [
            Outcome(batch, h[1], "stored", route="rich"),
            Outcome(batch, h[2], "skipped", "robots", fetched=False),
        ]
    )
    await record([Outcome(batch, h[3], "skipped", "noindex")])
    p = await read_progress(pool, batch)
    assert p is not None
    assert (p.stored, p.dead_lettered, p.skipped, p.rich, p.fetched) == (2, 0, 2, 1, 3)
    assert p.dead_by_reason == {} and p.skipped_by_reason == {"robots": 1, "noindex": 1}
    assert p.complete and p.completed_at is not None


async def test_migration_rehashes_pages_stored_under_an_older_normalisation(
    postgres_service: PostgresSettings,
) -> None:
    """Rows hashed by an earlier normaliser (no IDNA, query order kept) move to the one canonical hash."""
    import hashlib

    from workers.storage.migrate import load_migrations

    name = f"rehash_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(postgres_service.dsn())
    await admin.execute(f"CREATE DATABASE {name}")
    await admin.close()
    conn = await asyncpg.connect(postgres_service.dsn(name))
    try:
        everything = load_migrations()
        await apply_migrations(conn, migrations=[m for m in everything if m.version == 1])

        def old_hash(u: str) -> str:
            return hashlib.blake2b(u.encode(), digest_size=16).hexdigest()

        rows = [
            ("https://bücher.de/", "2024-01-01"),  # IDNA was applied in one path only
            ("https://xn--bcher-kva.de/", "2024-02-01"),  # same page, newer: this one survives
            ("https://example.com/a?b=2&a=1", "2024-01-01"),  # query order
            ("https://example.com/plain", "2024-01-01"),  # already canonical: untouched
        ]
        for url, fetched in rows:
            await conn.execute(
                "INSERT INTO pages (url_hash, url, host, final_url, status, route, score, content_hash,"
                " fetched_at, processed_at) VALUES ($1, $2, 'h', $2, 200, 'fast', 100, 'c', $3::text::date, now())",
                old_hash(url),
                url,
                fetched,
            )
        await apply_migrations(conn)
        got = {
            r["url"]: (r["url_hash"], r["fetched_at"].year * 100 + r["fetched_at"].month)
            for r in await conn.fetch("SELECT url, url_hash, fetched_at FROM pages")
        }
        assert got == {
            "https://xn--bcher-kva.de/": (url_hash("https://xn--bcher-kva.de/"), 202402),
            "https://example.com/a?a=1&b=2": (url_hash("https://example.com/a?a=1&b=2"), 202401),
            "https://example.com/plain": (url_hash("https://example.com/plain"), 202401),
        }
    finally:
        await conn.close()
