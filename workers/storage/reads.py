"""Read side of the ``pages`` table: typed rows for lookups and for ``streamcrawl export``."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from workers.storage.pages import pg_errors, refs_from_record, split_lines, unsigned_simhash
from workers.storage.plan import PARTS, ObjectRefs

__all__ = ["ExportedPage", "PageRow", "count_rows", "existing_hashes", "fetch_chunk", "fetch_row"]


@dataclass(frozen=True, slots=True)
class PageRow:
    """One row of ``pages``, as stored (simhash back to unsigned, JSON columns decoded)."""

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
    refs: ObjectRefs
    """Where the content parts are (key, digest and, in a segment, the byte range)."""
    fetched_at: datetime
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
        values["rules"] = split_lines(values["rules"])
        values["outlinks"] = split_lines(values["outlinks"])
        values["simhash"] = unsigned_simhash(values["simhash"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class ExportedPage:
    """What ``streamcrawl export`` writes per page (one JSON line: :meth:`as_dict`)."""

    url_hash: str
    url: str
    final_url: str
    title: str | None
    description: str | None
    lang: str | None
    route: str
    score: int
    markdown: str
    fetched_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "final_url": self.final_url,
            "title": self.title,
            "description": self.description,
            "lang": self.lang,
            "route": self.route,
            "score": self.score,
            "markdown": self.markdown,
            "fetched_at": self.fetched_at.isoformat(),
        }


_SCALARS = frozenset(PageRow.__dataclass_fields__) - {"refs"}
_PART_COLUMNS = [f"{p}_{f}" for p in PARTS for f in ("key", "digest", "offset", "length")]
_ROW_COLUMNS = ", ".join([*sorted(_SCALARS), *_PART_COLUMNS])


async def fetch_row(pool: asyncpg.Pool, url_hash: str) -> PageRow | None:
    with pg_errors("page lookup"):
        record = await pool.fetchrow(f"SELECT {_ROW_COLUMNS} FROM pages WHERE url_hash = $1", url_hash)
    return None if record is None else PageRow.from_record(record)


async def count_rows(pool: asyncpg.Pool, *, batch: str | None = None) -> int:
    with pg_errors("page count"):
        if batch is None:
            value = await pool.fetchval("SELECT count(*) FROM pages")
        else:
            value = await pool.fetchval("SELECT count(*) FROM pages WHERE batch = $1", batch)
    return int(value)


async def fetch_chunk(
    pool: asyncpg.Pool, *, after: str, limit: int, batch: str | None
) -> list[asyncpg.Record]:
    """The next ``limit`` rows in url_hash order after ``after`` (keyset pagination)."""
    sql = (
        "SELECT url_hash, url, final_url, title, description, lang, route, score, fetched_at, "
        + ", ".join(c for c in _PART_COLUMNS if c.startswith("markdown_"))
        + " FROM pages WHERE url_hash > $1"
        + (" AND batch = $3" if batch is not None else "")
        + " ORDER BY url_hash LIMIT $2"
    )
    args: list[object] = [after, limit] + ([batch] if batch is not None else [])
    with pg_errors("page export"):
        return list(await pool.fetch(sql, *args))


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
