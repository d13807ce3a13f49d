"""The ``pages`` table: one batched UPSERT per batch, plus the lookups the writer needs.

The write is a single ``INSERT … SELECT FROM unnest($1::text[], …) ON CONFLICT (url_hash)
DO UPDATE`` statement: one round trip per batch, whatever its size. Measured against a
per-row ``executemany`` and a COPY-into-temp-table variant in bench/stage_storage.py.

An older version of a page never overwrites a newer one (``WHERE pages.fetched_at <=
EXCLUDED.fetched_at``); ``first_stored_at`` is kept from the first write, and ``duplicate_of``
is left to workers/storage/dedup.py, which recomputes it right after the write.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import asyncpg

from workers.errors import DependencyUnavailable, RecordRejected
from workers.messages import ProcessedPage
from workers.storage.plan import PARTS, ObjectRefs, Part, WarcRun
from workers.storage.warc import validators_of

__all__ = [
    "PART_COLUMNS",
    "PG_CONNECTION_ERRORS",
    "UPSERT_SQL",
    "Existing",
    "clean_text",
    "columns_of",
    "fetch_existing",
    "join_lines",
    "part_from_record",
    "pg_errors",
    "refs_from_record",
    "signed_simhash",
    "split_lines",
    "unsigned_simhash",
    "upsert_pages",
]

# (column, array type of the unnest parameter, SELECT expression over the unnest alias ``u``)
_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("url_hash", "text", "u.url_hash"),
    ("url", "text", "u.url"),
    ("host", "text", "u.host"),
    ("final_url", "text", "u.final_url"),
    ("status", "int4", "u.status"),
    ("route", "text", "u.route"),
    ("score", "int4", "u.score"),
    ("rules", "text", "u.rules"),
    ("title", "text", "u.title"),
    ("description", "text", "u.description"),
    ("lang", "text", "u.lang"),
    ("canonical_url", "text", "u.canonical_url"),
    ("published_time", "text", "u.published_time"),
    ("word_count", "int4", "u.word_count"),
    ("content_hash", "text", "u.content_hash"),
    ("text_hash", "text", "u.text_hash"),
    ("simhash", "int8", "u.simhash"),
    ("outlink_count", "int4", "u.outlink_count"),
    ("outlinks", "text", "u.outlinks"),
    ("outlinks_nofollow", "text", "u.outlinks_nofollow"),
    ("text", "text", "u.text"),
    ("truncated", "bool", "u.truncated"),
    ("fallback", "bool", "u.fallback"),
    ("skipped", "text", "u.skipped"),
    ("batch", "text", "u.batch"),
    ("rank", "int4", "u.rank"),
    *(
        (f"{part}_{field}", typ, f"u.{part}_{field}")
        for part in PARTS
        for field, typ in (("key", "text"), ("digest", "text"), ("offset", "int8"), ("length", "int8"))
    ),
    ("warc_key", "text", "u.warc_key"),
    ("warc_offset", "int8", "u.warc_offset"),
    ("warc_length", "int8", "u.warc_length"),
    ("language", "text", "u.language"),
    ("language_score", "float4", "u.language_score"),
    ("quality", "text", "u.quality::jsonb"),
    ("quality_flags", "text", "u.quality_flags"),
    ("robots", "text", "u.robots"),
    ("truncated_parts", "text", "u.truncated_parts"),
    ("content_type", "text", "u.content_type"),
    ("mime_detected", "text", "u.mime_detected"),
    ("charset", "text", "u.charset"),
    ("body_bytes", "int8", "u.body_bytes"),
    ("http_version", "text", "u.http_version"),
    ("peer_ip", "text", "u.peer_ip"),
    ("redirects", "text", "u.redirects"),
    ("etag", "text", "u.etag"),
    ("last_modified", "text", "u.last_modified"),
    ("fetched_at", "float8", "to_timestamp(u.fetched_at)"),
    ("captured_at", "float8", "to_timestamp(u.captured_at)"),
    ("processed_at", "float8", "to_timestamp(u.processed_at)"),
)
_NAMES = [c for c, _, _ in _COLUMNS]

UPSERT_SQL = (
    f"INSERT INTO pages ({', '.join(_NAMES)}, first_stored_at, updated_at)\n"
    f"SELECT {', '.join(e for _, _, e in _COLUMNS)}, now(), now()\n"
    f"FROM unnest({', '.join(f'${i}::{t}[]' for i, (_, t, _) in enumerate(_COLUMNS, 1))})"
    f" AS u({', '.join(_NAMES)})\n"
    "ON CONFLICT (url_hash) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in _NAMES[1:])
    + ", updated_at = now()\nWHERE pages.fetched_at <= EXCLUDED.fetched_at"
)

PART_COLUMNS = [f"{p}_{f}" for p in PARTS for f in ("key", "digest", "offset", "length")] + [
    "warc_key",
    "warc_offset",
    "warc_length",
]
"""Every column that says where a page's content is."""

_RETRYABLE_SQLSTATE_CLASSES = ("08", "40", "53", "55", "57", "58")
_RECORD_SQLSTATE_CLASSES = ("22", "23")
PG_CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    asyncpg.InterfaceError,
    # Not an InterfaceError: what asyncpg raises when a connection's protocol was left mid-
    # operation ("cannot switch to state N; another operation (2) is in progress", 2 being
    # ERROR_CONSUME), as the PostgreSQL-down drill met once when the server went away. The
    # pool terminates such a connection when it is released (asyncpg's pool.py: a failed
    # reset terminates it), so the retry runs on a fresh one.
    asyncpg.InternalClientError,
    OSError,
    TimeoutError,
)
"""The client-side failures of a PostgreSQL connection: the dependency, never the record."""


@contextlib.contextmanager
def pg_errors(what: str) -> Iterator[None]:
    """Translate asyncpg/socket failures into the error tree (connection → retryable,
    bad data → RecordRejected); anything else (a bug) propagates unchanged."""
    try:
        yield
    except asyncpg.PostgresError as exc:
        state = exc.sqlstate or ""
        if state.startswith(_RETRYABLE_SQLSTATE_CLASSES):
            raise DependencyUnavailable(f"PostgreSQL {what}: {exc}") from exc
        if state.startswith(_RECORD_SQLSTATE_CLASSES):
            raise RecordRejected(f"PostgreSQL rejected {what}: {exc}") from exc
        raise
    except PG_CONNECTION_ERRORS as exc:
        raise DependencyUnavailable(f"PostgreSQL {what}: {type(exc).__name__}: {exc}") from exc


def clean_text(value: str) -> str:
    """PostgreSQL text cannot hold NUL or lone surrogates: drop/replace them."""
    if "\x00" in value:
        value = value.replace("\x00", "")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _opt(value: str | None) -> str | None:
    return None if value is None else clean_text(value)


def signed_simhash(value: int) -> int:
    """Map an unsigned 64-bit simhash onto PostgreSQL's signed bigint (two's complement)."""
    value &= 0xFFFF_FFFF_FFFF_FFFF
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned_simhash(value: int) -> int:
    return value & 0xFFFF_FFFF_FFFF_FFFF


@dataclass(frozen=True, slots=True)
class Existing:
    """What the table already holds for a url_hash: enough to skip unchanged objects."""

    fetched_at: float
    refs: ObjectRefs


def join_lines(items: Sequence[str]) -> str:
    """Newline-separated list column; a newline inside an item (never valid in a URL or a
    rule name) becomes a space so the split stays exact."""
    text = "\n".join(items)
    if text.count("\n") != len(items) - 1:
        text = "\n".join(i.replace("\r", " ").replace("\n", " ") for i in items)
    return clean_text(text)


def split_lines(text: str) -> list[str]:
    return text.split("\n") if text else []


def _part_values(refs: ObjectRefs) -> list[object]:
    out: list[object] = []
    for name in PARTS:
        part: Part | None = getattr(refs, name)
        if part is None:
            out += [None, None, None, None]
        else:
            out += [part.key, part.digest, part.offset, part.length]
    return out


def part_from_record(record: asyncpg.Record, name: str) -> Part | None:
    key = record[f"{name}_key"]
    if key is None:
        return None
    return Part(key, record[f"{name}_digest"] or "", record[f"{name}_offset"], record[f"{name}_length"])


def refs_from_record(record: asyncpg.Record) -> ObjectRefs:
    run = None
    if record["warc_key"] is not None:
        run = WarcRun(record["warc_key"], record["warc_offset"], record["warc_length"])
    return ObjectRefs(**{name: part_from_record(record, name) for name in PARTS}, warc=run)


def _row(page: ProcessedPage, refs: ObjectRefs, mime_detected: str | None) -> tuple[object, ...]:
    etag, last_modified = validators_of(page.response_headers)
    run = refs.warc
    return (
        page.url_hash,
        clean_text(page.url),
        clean_text(page.host),
        clean_text(page.final_url),
        page.status,
        clean_text(page.route),
        page.score,
        join_lines(page.rules),
        _opt(page.title),
        _opt(page.description),
        _opt(page.lang),
        _opt(page.canonical_url),
        _opt(page.published_time),
        page.word_count,
        clean_text(page.content_hash),
        clean_text(page.text_hash),
        signed_simhash(page.simhash),
        len(page.outlinks),
        join_lines(page.outlinks),
        join_lines(page.outlinks_nofollow),
        clean_text(page.text) if page.text else None,
        page.truncated,
        page.fallback,
        _opt(page.skipped),
        _opt(page.batch),
        page.rank,
        *_part_values(refs),
        None if run is None else run.key,
        None if run is None else run.offset,
        None if run is None else run.length,
        _opt(page.language),
        page.language_score,
        json.dumps(page.quality, default=str, ensure_ascii=False) if page.quality else None,
        join_lines(page.quality_flags),
        join_lines(page.robots),
        join_lines(page.truncated_parts),
        _opt(page.content_type) or None,
        mime_detected,
        _opt(page.charset),
        page.body_bytes or None,
        _opt(page.http_version) or None,
        _opt(page.peer_ip),
        join_lines(page.redirects),
        _opt(etag),
        _opt(last_modified),
        float(page.fetched_at),
        float(page.fetched_at),
        float(page.processed_at),
    )


def columns_of(
    pages: Sequence[ProcessedPage],
    refs: Sequence[ObjectRefs],
    mime_detected: Sequence[str | None] | None = None,
) -> list[list[object]]:
    """Column-major arrays (one list per column) for the unnest UPSERT."""
    mimes = mime_detected if mime_detected is not None else [None] * len(pages)
    rows = [_row(p, r, m) for p, r, m in zip(pages, refs, mimes, strict=True)]
    return [list(col) for col in zip(*rows, strict=True)] if rows else [[] for _ in _COLUMNS]


async def upsert_pages(
    conn: asyncpg.Connection | asyncpg.Pool,
    pages: Sequence[ProcessedPage],
    refs: Sequence[ObjectRefs],
    mime_detected: Sequence[str | None] | None = None,
) -> None:
    """Write all rows in one statement. ``pages`` must not repeat a url_hash."""
    if not pages:
        return
    with pg_errors(f"upsert of {len(pages)} pages"):
        await conn.execute(UPSERT_SQL, *columns_of(pages, refs, mime_detected))


async def fetch_existing(
    conn: asyncpg.Connection | asyncpg.Pool, url_hashes: Sequence[str]
) -> dict[str, Existing]:
    """The stored version (fetch time and object refs) of each url_hash that has a row."""
    with pg_errors("lookup of stored pages"):
        records = await conn.fetch(
            "SELECT url_hash, extract(epoch FROM fetched_at)::float8 AS fetched_at, "
            + ", ".join(PART_COLUMNS)
            + " FROM pages WHERE url_hash = ANY($1::text[])",
            list(url_hashes),
        )
    return {r["url_hash"]: Existing(fetched_at=r["fetched_at"], refs=refs_from_record(r)) for r in records}
