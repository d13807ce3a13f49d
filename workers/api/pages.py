"""``GET /pages/{url_hash}`` and ``/pages/by-url``: one stored page's metadata, one query.

The row is read as the storage layer's :class:`~workers.storage.PageRow` (same columns, same
decoding), plus what the API adds: the detected language, whether plain text is stored, and
the batches that requested the URL (``crawl_urls``).
"""

from __future__ import annotations

import asyncpg

from workers.api.content import available_formats
from workers.api.models import PageOut
from workers.storage import PageRow
from workers.storage.reads import ROW_COLUMNS

__all__ = ["page_sql", "read_page"]

_BATCHES_SHOWN = 50


def page_sql() -> str:
    """The one statement behind a metadata read (``$1`` = url_hash)."""
    return (
        f"SELECT {', '.join('p.' + c for c in ROW_COLUMNS.split(', '))}, p.language AS detected_language,"
        f" ARRAY(SELECT u.batch FROM crawl_urls u WHERE u.url_hash = p.url_hash"
        f" ORDER BY u.admitted_at DESC LIMIT {_BATCHES_SHOWN}) AS batches"
        " FROM pages p WHERE p.url_hash = $1"
    )


async def read_page(pool: asyncpg.Pool, url_hash: str, *, outlinks: bool, timeout_s: float) -> PageOut | None:
    """The page's metadata, or None when ``url_hash`` is not stored."""
    record = await pool.fetchrow(page_sql(), url_hash, timeout=timeout_s)
    if record is None:
        return None
    row = PageRow.from_record(record)
    return PageOut(
        url_hash=row.url_hash,
        url=row.url,
        final_url=row.final_url,
        host=row.host,
        status=row.status,
        route=row.route,
        score=row.score,
        title=row.title,
        description=row.description,
        lang=row.lang,
        language=record["detected_language"],
        canonical_url=row.canonical_url,
        published_time=row.published_time,
        word_count=row.word_count,
        content_hash=row.content_hash,
        text_hash=row.text_hash,
        simhash=f"{row.simhash:016x}",
        outlink_count=row.outlink_count,
        outlinks=row.outlinks if outlinks else None,
        truncated=row.truncated,
        fallback=row.fallback,
        fetched_at=row.fetched_at,
        processed_at=row.processed_at,
        first_stored_at=row.first_stored_at,
        updated_at=row.updated_at,
        batches=list(record["batches"]),
        formats=available_formats(row),
    )
