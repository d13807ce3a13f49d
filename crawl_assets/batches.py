"""Crawl batches in PostgreSQL: what a frontier partition published, and how far it got.

A batch is complete when every URL hash it published is **stored** (a ``pages`` row
written after the batch was published) or **dead-lettered** (a ``crawl_dead_letters``
row for the batch, failed after it was published). Each URL of a batch appears once in
``crawl_batch_urls`` and joins at most one page row and one dead-letter row, so the
counts are of distinct URLs: a redelivered record can never be counted twice, and a URL
that was dead-lettered and later stored (a replay that worked) counts as stored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from workers.messages import DeadLetter

__all__ = [
    "BatchProgress",
    "PublishedBatch",
    "batch_progress",
    "begin_batch",
    "finish_batch",
    "published_batches",
    "record_dead_letters",
]


@dataclass(frozen=True, slots=True)
class PublishedBatch:
    batch: str
    published_at: float
    """Epoch seconds (PostgreSQL clock) at which publishing began."""


@dataclass(frozen=True, slots=True)
class BatchProgress:
    batch: str
    list_id: str
    published_at: float
    requested: int
    stored: int
    dead_lettered: int

    @property
    def accounted(self) -> int:
        return self.stored + self.dead_lettered

    @property
    def complete(self) -> bool:
        return self.accounted >= self.requested

    @property
    def dlq_rate(self) -> float:
        return self.dead_lettered / self.requested if self.requested else 0.0


async def begin_batch(
    conn: asyncpg.Connection,
    *,
    batch: str,
    list_id: str,
    ranks: tuple[int, int],
    url_template: str,
    recrawl: bool,
    urls: Sequence[tuple[str, str, int | None]],
    skipped: int,
    run_id: str | None,
) -> None:
    """Record (or replace) a batch about to be published: its URL hashes, status 'publishing'.

    ``urls`` are (url_hash, url, rank). ``published_at`` is set now, *before* the first
    record is sent, so no page of this batch can be stored before it.
    """
    async with conn.transaction():
        await conn.execute("DELETE FROM crawl_batch_urls WHERE batch = $1", batch)
        await conn.copy_records_to_table(
            "crawl_batch_urls",
            records=[(batch, h, u, r) for h, u, r in urls],
            columns=["batch", "url_hash", "url", "rank"],
        )
        await conn.execute(
            "INSERT INTO crawl_batches (batch, list_id, first_rank, last_rank, url_template, recrawl,"
            " requested, skipped, status, run_id, published_at, updated_at)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 'publishing', $9, now(), now())"
            " ON CONFLICT (batch) DO UPDATE SET list_id = $2, first_rank = $3, last_rank = $4,"
            " url_template = $5, recrawl = $6, requested = $7, skipped = $8, status = 'publishing',"
            " run_id = $9, published_at = now(), updated_at = now()",
            batch,
            list_id,
            ranks[0],
            ranks[1],
            url_template,
            recrawl,
            len(urls),
            skipped,
            run_id,
        )


async def finish_batch(conn: asyncpg.Connection, batch: str) -> None:
    """Mark a batch published: every record was acknowledged by the broker."""
    await conn.execute(
        "UPDATE crawl_batches SET status = 'published', updated_at = now() WHERE batch = $1", batch
    )


async def published_batches(conn: asyncpg.Connection) -> list[PublishedBatch]:
    rows = await conn.fetch(
        "SELECT batch, extract(epoch FROM published_at)::float8 AS published_at"
        " FROM crawl_batches WHERE status = 'published' ORDER BY published_at"
    )
    return [PublishedBatch(r["batch"], r["published_at"]) for r in rows]


async def record_dead_letters(conn: asyncpg.Connection, letters: Sequence[tuple[str, DeadLetter]]) -> int:
    """Remember (batch, url_hash) of dead letters that carry both; idempotent. Returns rows offered."""
    rows = [
        (letter.batch, letter.url_hash, topic, letter.error_class, letter.last_failure_at)
        for topic, letter in letters
        if letter.batch and letter.url_hash
    ]
    if rows:
        await conn.executemany(
            "INSERT INTO crawl_dead_letters (batch, url_hash, dlq_topic, error_class, failed_at)"
            " VALUES ($1, $2, $3, $4, to_timestamp($5)) ON CONFLICT (batch, url_hash) DO UPDATE"
            " SET dlq_topic = excluded.dlq_topic, error_class = excluded.error_class,"
            " failed_at = greatest(crawl_dead_letters.failed_at, excluded.failed_at)",
            rows,
        )
    return len(rows)


async def batch_progress(conn: asyncpg.Connection, batches: Sequence[str]) -> list[BatchProgress]:
    """Progress of published ``batches`` (distinct URLs stored / dead-lettered)."""
    if not batches:
        return []
    has_pages = await conn.fetchval("SELECT to_regclass('pages') IS NOT NULL")
    stored_join = (
        "LEFT JOIN pages p ON p.url_hash = u.url_hash AND p.updated_at >= b.published_at"
        if has_pages
        else "LEFT JOIN (SELECT NULL::text AS url_hash) p ON false"
    )
    rows = await conn.fetch(
        "SELECT b.batch, b.list_id, extract(epoch FROM b.published_at)::float8 AS published_at,"
        " b.requested,"
        " count(u.url_hash) FILTER (WHERE p.url_hash IS NOT NULL) AS stored,"
        " count(u.url_hash) FILTER (WHERE p.url_hash IS NULL AND d.url_hash IS NOT NULL) AS dead"
        " FROM crawl_batches b"
        " LEFT JOIN crawl_batch_urls u ON u.batch = b.batch "
        + stored_join
        + " LEFT JOIN crawl_dead_letters d ON d.batch = u.batch AND d.url_hash = u.url_hash"
        " AND d.failed_at >= b.published_at"
        " WHERE b.status = 'published' AND b.batch = ANY($1::text[])"
        " GROUP BY b.batch, b.list_id, b.published_at, b.requested ORDER BY b.batch",
        list(batches),
    )
    return [
        BatchProgress(
            batch=r["batch"],
            list_id=r["list_id"],
            published_at=r["published_at"],
            requested=r["requested"],
            stored=r["stored"],
            dead_lettered=r["dead"],
        )
        for r in rows
    ]
