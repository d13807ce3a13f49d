"""Read side of the ``pages`` table: typed rows, lookups and conditional-recrawl validators."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from workers.storage.pages import PART_COLUMNS, pg_errors, refs_from_record, split_lines, unsigned_simhash
from workers.storage.plan import ObjectRefs

__all__ = ["ROW_COLUMNS", "PageRow", "count_rows", "existing_hashes", "fetch_row", "fetch_validators"]


@dataclass(frozen=True, slots=True)
class PageRow:
    """One row of ``pages``, as stored (simhash back to unsigned, list columns split)."""

    url_hash: str
    url: str
    host: str
    final_url: str
    status: int
    route: str
    score: int
    rules: list[str]
    title: str | None
    description: str | None
    lang: str | None
    canonical_url: str | None
    published_time: str | None
    word_count: int
    content_hash: str
    text_hash: str
    simhash: int
    outlink_count: int
    outlinks: list[str]
    truncated: bool
    fallback: bool
    skipped: str | None
    batch: str | None
    rank: int | None
    language: str | None
    language_score: float | None
    quality: str | None
    """The extraction signals as JSON text."""
    quality_flags: list[str]
    robots: list[str]
    truncated_parts: list[str]
    content_type: str | None
    mime_detected: str | None
    charset: str | None
    body_bytes: int | None
    http_version: str | None
    peer_ip: str | None
    redirects: list[str]
    etag: str | None
    last_modified: str | None
    duplicate_of: str | None
    refs: ObjectRefs
    """Where the content parts are (key, digest, byte range) and the page's WARC run."""
    fetched_at: datetime
    captured_at: datetime | None
    processed_at: datetime
    first_stored_at: datetime
    updated_at: datetime

    @property
    def html_key(self) -> str | None:
        return self.refs.key("html")

    @property
    def markdown_key(self) -> str | None:
        return self.refs.key("markdown")

    @property
    def rendered_key(self) -> str | None:
        return self.refs.key("rendered")

    @classmethod
    def from_record(cls, record: asyncpg.Record) -> PageRow:
        values: dict[str, Any] = {k: v for k, v in record.items() if k in _SCALARS}
        values["refs"] = refs_from_record(record)
        for name in _LISTS:
            values[name] = split_lines(values[name])
        values["simhash"] = unsigned_simhash(values["simhash"])
        return cls(**values)


_LISTS = ("rules", "outlinks", "quality_flags", "robots", "truncated_parts", "redirects")
_SCALARS = frozenset(PageRow.__dataclass_fields__) - {"refs"}
ROW_COLUMNS = ", ".join(  # what PageRow.from_record reads (the API selects these too)
    [*("quality::text AS quality" if c == "quality" else c for c in sorted(_SCALARS)), *PART_COLUMNS]
)


async def fetch_row(pool: asyncpg.Pool, url_hash: str) -> PageRow | None:
    with pg_errors("page lookup"):
        record = await pool.fetchrow(f"SELECT {ROW_COLUMNS} FROM pages WHERE url_hash = $1", url_hash)
    return None if record is None else PageRow.from_record(record)


async def count_rows(pool: asyncpg.Pool, *, batch: str | None = None) -> int:
    with pg_errors("page count"):
        if batch is None:
            value = await pool.fetchval("SELECT count(*) FROM pages")
        else:
            value = await pool.fetchval("SELECT count(*) FROM pages WHERE batch = $1", batch)
    return int(value)


async def existing_hashes(pool: asyncpg.Pool, url_hashes: Sequence[str], *, chunk: int = 10_000) -> set[str]:
    found: set[str] = set()
    with pg_errors("stored-hash lookup"):
        for start in range(0, len(url_hashes), chunk):
            rows = await pool.fetch(
                "SELECT url_hash FROM pages WHERE url_hash = ANY($1::text[])",
                list(url_hashes[start : start + chunk]),
            )
            found.update(r["url_hash"] for r in rows)
    return found


async def fetch_validators(
    pool: asyncpg.Pool, url_hashes: Sequence[str], *, chunk: int = 10_000
) -> dict[str, tuple[str | None, str | None]]:
    """``{url_hash: (etag, last_modified)}`` of the stored pages that have either validator."""
    out: dict[str, tuple[str | None, str | None]] = {}
    with pg_errors("validator lookup"):
        for start in range(0, len(url_hashes), chunk):
            rows = await pool.fetch(
                "SELECT url_hash, etag, last_modified FROM pages WHERE url_hash = ANY($1::text[])"
                " AND (etag IS NOT NULL OR last_modified IS NOT NULL)",
                list(url_hashes[start : start + chunk]),
            )
            out.update((r["url_hash"], (r["etag"], r["last_modified"])) for r in rows)
    return out
