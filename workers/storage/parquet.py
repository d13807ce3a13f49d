"""The columnar export: one Parquet row per stored page, modelled on Common Crawl's index.

Columns named as in Common Crawl's columnar URL index mean what they mean there, with these
differences: ``content_languages`` is the detected language code of the main text as the
extractor writes it (one code, e.g. ``en``); ``content_truncated`` is ``length`` when the body
was cut at the size cap, else null; ``warc_filename`` is the object key inside the
StreamCrawl bucket (``STREAMCRAWL_S3_BUCKET``), and ``warc_record_offset``/``_length`` address
the page's ``response`` record, so ``GET`` with ``Range: bytes=offset-(offset+length-1)`` returns
one gzip member that any WARC reader parses. ``fetch_redirect`` is the final URL when the
request was redirected. Beyond the index: the page's title, main ``text`` (what a WET record
holds), ``markdown``, ``language_score``, ``simhash`` (unsigned 64-bit), ``duplicate_of``
(url_hash of the first-stored copy, null for originals), the router's ``route`` and
``score``, ``url_hash`` and the crawl ``batch``.

Rows of the first build (before WARC output) have null ``warc_*`` and ``content_digest``.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from workers.scope import registered_domain
from workers.storage.export import CorpusRow

__all__ = ["SCHEMA", "parquet_row", "write_parquet"]

SCHEMA = pa.schema(
    [
        ("url", pa.string()),
        ("url_host_name", pa.string()),
        ("url_host_registered_domain", pa.string()),
        ("fetch_time", pa.timestamp("us", tz="UTC")),
        ("fetch_status", pa.int16()),
        ("fetch_redirect", pa.string()),
        ("content_digest", pa.string()),
        ("content_mime_type", pa.string()),
        ("content_mime_detected", pa.string()),
        ("content_charset", pa.string()),
        ("content_languages", pa.string()),
        ("content_truncated", pa.string()),
        ("warc_filename", pa.string()),
        ("warc_record_offset", pa.int64()),
        ("warc_record_length", pa.int64()),
        ("title", pa.string()),
        ("text", pa.large_string()),
        ("markdown", pa.large_string()),
        ("language_score", pa.float32()),
        ("simhash", pa.uint64()),
        ("duplicate_of", pa.string()),
        ("route", pa.string()),
        ("score", pa.int32()),
        ("url_hash", pa.string()),
        ("batch", pa.string()),
    ]
)


def parquet_row(row: CorpusRow) -> dict[str, Any]:
    html = row.refs.html if row.refs.is_warc else None
    fetched = row.captured_at or row.fetched_at
    mime = (row.content_type or "").split(";", 1)[0].strip().lower() or None
    return {
        "url": row.url,
        "url_host_name": row.host,
        "url_host_registered_domain": registered_domain(row.host) if row.host else None,
        "fetch_time": fetched.astimezone(UTC),
        "fetch_status": row.status,
        "fetch_redirect": row.final_url if row.final_url != row.url else None,
        "content_digest": html.digest if html is not None else None,
        "content_mime_type": mime,
        "content_mime_detected": row.mime_detected,
        "content_charset": row.charset,
        "content_languages": row.language,
        "content_truncated": "length" if row.truncated or "raw" in row.truncated_parts else None,
        "warc_filename": html.key if html is not None else None,
        "warc_record_offset": html.offset if html is not None else None,
        "warc_record_length": html.length if html is not None else None,
        "title": row.title,
        "text": row.text("text"),
        "markdown": row.text("markdown"),
        "language_score": row.language_score,
        "simhash": row.simhash,
        "duplicate_of": row.duplicate_of,
        "route": row.route,
        "score": row.score,
        "url_hash": row.url_hash,
        "batch": row.batch,
    }


async def write_parquet(
    rows: AsyncIterable[CorpusRow],
    path: Path,
    *,
    row_group_rows: int = 2000,
    on_row: Callable[[CorpusRow], None] | None = None,
) -> int:
    """Write ``rows`` to ``path`` (zstd-compressed row groups); returns the row count."""
    count = 0
    buffer: list[dict[str, Any]] = []
    with pq.ParquetWriter(path, SCHEMA, compression="zstd") as writer:
        async for row in rows:
            buffer.append(parquet_row(row))
            count += 1
            if on_row is not None:
                on_row(row)
            if len(buffer) >= row_group_rows:
                writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))
                buffer = []
        if buffer or count == 0:
            writer.write_table(pa.Table.from_pylist(buffer, schema=SCHEMA))
    return count
