"""The stored corpus as a stream of rows with their content: what every export reads.

One server-side cursor walks the selected rows in WARC order (object, then offset), so a
whole run of pages that share an object is fetched with **one ranged GET** instead of one
request per page and part; up to ``fetch_parallelism`` such reads are in flight while rows are
yielded. Rows of the first build (no WARC) come last and cost one GET per part.

Which rows: :func:`corpus_filter` is the one place that turns ``--batch``/``--dedup`` into SQL
(batch membership is ``pages.batch`` for now; the batch ledger's join replaces it there).
Skipped rows of the first build are never exported.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from workers.errors import RecordRejected
from workers.messages import ProcessedPage, compress_html
from workers.storage.objects import BlobStore
from workers.storage.pages import PART_COLUMNS, pg_errors, refs_from_record, split_lines, unsigned_simhash
from workers.storage.plan import ObjectRefs, Part
from workers.storage.warc import build_page_records
from workers.storage.warc_read import decode_part

__all__ = ["CONTENT_PARTS", "CorpusRow", "corpus_filter", "count_corpus", "iter_corpus", "warc_bytes"]

CONTENT_PARTS = frozenset({"text", "markdown", "html", "rendered", "warc"})

_COLUMNS = (
    "url_hash, url, host, final_url, status, route, score, title, description, lang, language, "
    "language_score, content_type, mime_detected, charset, word_count, text_hash, simhash, truncated, truncated_parts, "
    "redirects, quality_flags, duplicate_of, batch, rank, fetched_at, captured_at, " + ", ".join(PART_COLUMNS)
)


def corpus_filter(*, batch: str | None, dedup: bool) -> tuple[str, list[Any]]:
    """``WHERE`` clause and its arguments for an export's rows."""
    clauses = ["skipped IS NULL"]
    args: list[Any] = []
    if batch is not None:
        args.append(batch)
        clauses.append(f"batch = ${len(args)}")
    if dedup:
        clauses.append("duplicate_of IS NULL")
    return " AND ".join(clauses), args


@dataclass(slots=True)
class CorpusRow:
    """One stored page as the exports see it; ``content`` holds the parts asked for."""

    url_hash: str
    url: str
    host: str
    final_url: str
    status: int
    route: str
    score: int
    title: str | None
    description: str | None
    lang: str | None
    language: str | None
    language_score: float | None
    content_type: str | None
    mime_detected: str | None
    charset: str | None
    word_count: int
    text_hash: str
    simhash: int
    truncated: bool
    truncated_parts: list[str]
    redirects: list[str]
    quality_flags: list[str]
    duplicate_of: str | None
    batch: str | None
    rank: int | None
    fetched_at: datetime
    captured_at: datetime | None
    refs: ObjectRefs
    content: dict[str, bytes] = field(default_factory=dict)

    def text(self, part: str) -> str:
        return self.content.get(part, b"").decode("utf-8", "replace")

    def as_json(self) -> dict[str, Any]:
        """One JSON Lines object (``streamcrawl export --format jsonl``)."""
        return {
            "url": self.url,
            "final_url": self.final_url,
            "url_hash": self.url_hash,
            "title": self.title,
            "description": self.description,
            "lang": self.lang,
            "language": self.language,
            "language_score": self.language_score,
            "fetch_status": self.status,
            "content_type": self.content_type,
            "charset": self.charset,
            "route": self.route,
            "score": self.score,
            "fetched_at": (self.captured_at or self.fetched_at).isoformat(),
            "duplicate_of": self.duplicate_of,
            "batch": self.batch,
            "text": self.text("text"),
            "markdown": self.text("markdown"),
        }

    @classmethod
    def from_record(cls, r: asyncpg.Record) -> CorpusRow:
        return cls(
            url_hash=r["url_hash"],
            url=r["url"],
            host=r["host"],
            final_url=r["final_url"],
            status=r["status"],
            route=r["route"],
            score=r["score"],
            title=r["title"],
            description=r["description"],
            lang=r["lang"],
            language=r["language"],
            language_score=r["language_score"],
            content_type=r["content_type"],
            mime_detected=r["mime_detected"],
            charset=r["charset"],
            word_count=r["word_count"],
            text_hash=r["text_hash"],
            simhash=unsigned_simhash(r["simhash"]),
            truncated=r["truncated"],
            truncated_parts=split_lines(r["truncated_parts"]),
            redirects=split_lines(r["redirects"]),
            quality_flags=split_lines(r["quality_flags"]),
            duplicate_of=r["duplicate_of"],
            batch=r["batch"],
            rank=r["rank"],
            fetched_at=r["fetched_at"],
            captured_at=r["captured_at"],
            refs=refs_from_record(r),
        )


def warc_bytes(row: CorpusRow) -> bytes:
    """The page's gzipped WARC records: as stored, or (first-build rows, which have none)
    built now from the stored HTML and Markdown, with synthesized HTTP headers."""
    if "warc" in row.content:
        return row.content["warc"]
    page = ProcessedPage(
        url=row.url,
        url_hash=row.url_hash,
        host=row.host,
        final_url=row.final_url,
        status=row.status,
        route=row.route,
        score=row.score,
        fetched_at=(row.captured_at or row.fetched_at).timestamp(),
        processed_at=(row.captured_at or row.fetched_at).timestamp(),
        content_hash="",
        html_zstd=compress_html(row.content.get("html", b"")),
        markdown=row.text("markdown"),
        text=row.text("text"),
        title=row.title,
        language=row.language,
        language_score=row.language_score,
        simhash=row.simhash,
        text_hash=row.text_hash,
        word_count=row.word_count,
        content_type=row.content_type or "",
        charset=row.charset,
        truncated=row.truncated,
    )
    return b"".join(r.data for r in build_page_records(page).records)


async def count_corpus(pool: asyncpg.Pool, *, batch: str | None, dedup: bool) -> int:
    where, args = corpus_filter(batch=batch, dedup=dedup)
    with pg_errors("export count"):
        return int(await pool.fetchval(f"SELECT count(*) FROM pages WHERE {where}", *args))


def _span(rows: Sequence[CorpusRow]) -> tuple[int, int]:
    start = min(r.refs.warc.offset for r in rows if r.refs.warc is not None)
    end = max(r.refs.warc.offset + r.refs.warc.length for r in rows if r.refs.warc is not None)
    return start, end


def _slice(data: bytes, base: int, part: Part) -> bytes:
    offset = (part.offset or 0) - base
    return data[offset : offset + (part.length or 0)]


async def _load_warc_group(blobs: BlobStore, rows: list[CorpusRow], parts: frozenset[str]) -> None:
    """One ranged GET for a run of rows in the same object; every part sliced from it."""
    run = rows[0].refs.warc
    assert run is not None
    start, end = _span(rows)
    data = await blobs.get(run.key, offset=start, length=end - start)
    if data is None or len(data) < end - start:
        raise RecordRejected(
            f"WARC object {run.key} is missing or shorter than its rows say (run `streamcrawl fsck`)"
        )
    for row in rows:
        assert row.refs.warc is not None
        if "warc" in parts:  # the run holds every other part already
            w = row.refs.warc
            row.content["warc"] = data[w.offset - start : w.offset - start + w.length]
            continue
        for name in parts:
            part: Part | None = getattr(row.refs, name)
            if part is not None:
                row.content[name] = decode_part(_slice(data, start, part), part=name, warc=True)


async def _load_legacy(blobs: BlobStore, row: CorpusRow, parts: frozenset[str]) -> None:
    for name in parts - {"warc"}:
        part: Part | None = getattr(row.refs, name, None)
        if part is None:
            continue
        data = await blobs.get(part.key, offset=part.offset or 0, length=part.length)
        if data is not None:
            row.content[name] = decode_part(data, part=name, warc=False)


def _groups(rows: list[CorpusRow], max_bytes: int) -> list[list[CorpusRow]]:
    """Consecutive rows of one object (split when the span grows past ``max_bytes``); a
    first-build row is a group of its own."""
    groups: list[list[CorpusRow]] = []
    for row in rows:
        w = row.refs.warc
        last = groups[-1] if groups else None
        if (
            w is not None
            and last is not None
            and last[0].refs.warc is not None
            and last[0].refs.warc.key == w.key
            and w.offset + w.length - _span(last)[0] <= max_bytes
        ):
            last.append(row)
        else:
            groups.append([row])
    return groups


async def iter_corpus(
    pool: asyncpg.Pool,
    blobs: BlobStore,
    *,
    batch: str | None = None,
    dedup: bool = False,
    parts: Sequence[str] = ("text", "markdown"),
    chunk_rows: int = 500,
    fetch_parallelism: int = 8,
    max_read_bytes: int = 16_000_000,
) -> AsyncGenerator[CorpusRow, None]:
    """Every selected row with ``parts`` of its content loaded, in WARC order. With ``warc``
    among them a WARC row gets only its run of records (which holds every other part); a
    first-build row gets the other parts."""
    wanted = frozenset(parts)
    unknown = wanted - CONTENT_PARTS
    if unknown:
        raise ValueError(f"unknown content parts: {sorted(unknown)}")
    where, args = corpus_filter(batch=batch, dedup=dedup)
    sql = f"SELECT {_COLUMNS} FROM pages WHERE {where} ORDER BY warc_key NULLS LAST, warc_offset, url_hash"
    window = asyncio.Semaphore(fetch_parallelism)

    async def load(group: list[CorpusRow]) -> None:
        async with window:
            if group[0].refs.warc is not None:
                await _load_warc_group(blobs, group, wanted)
            else:
                await _load_legacy(blobs, group[0], wanted)

    with pg_errors("export"):
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            cursor = await conn.cursor(sql, *args)
            while True:
                records = await cursor.fetch(chunk_rows)
                if not records:
                    return
                rows = [CorpusRow.from_record(r) for r in records]
                if wanted:
                    await asyncio.gather(*(load(g) for g in _groups(rows, max_read_bytes)))
                for row in rows:
                    yield row
