"""Reading stored content back: one WARC record's payload, or a first-build object's bytes."""

from __future__ import annotations

import io
from dataclasses import dataclass

from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed

from workers.errors import RecordRejected
from workers.messages import decompress_html

__all__ = ["StoredRecord", "decode_part", "read_record"]


@dataclass(frozen=True, slots=True)
class StoredRecord:
    kind: str
    """WARC-Type."""
    headers: dict[str, str]
    """WARC headers."""
    http_headers: list[tuple[str, str]]
    """HTTP headers (request and response records), as written."""
    status_line: str
    payload: bytes
    """The HTTP body (response), the content (conversion, metadata), or b"" (request)."""


def read_record(data: bytes) -> StoredRecord:
    """Parse one gzipped WARC record (as fetched by a ranged GET of its offset and length)."""
    try:
        for record in ArchiveIterator(io.BytesIO(data), arc2warc=False, ensure_http_headers=False):
            http = record.http_headers
            return StoredRecord(
                kind=record.rec_type,
                headers=dict(record.rec_headers.headers),
                http_headers=list(http.headers) if http is not None else [],
                status_line=f"{http.protocol} {http.statusline}".strip() if http is not None else "",
                payload=record.content_stream().read(),
            )
    except (ArchiveLoadFailed, OSError, EOFError, ValueError) as exc:
        raise RecordRejected(f"stored WARC record is unreadable: {exc}") from exc
    raise RecordRejected("stored WARC record is empty")


def decode_part(data: bytes, *, part: str, warc: bool) -> bytes:
    """A part's content from its stored bytes: the record's payload (WARC rows), or the first
    build's object (zstd for ``html``/``rendered``, UTF-8 for ``markdown``)."""
    if warc:
        return read_record(data).payload
    if part in ("html", "rendered"):
        return decompress_html(data)
    return data
