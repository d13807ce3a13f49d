"""Read one response body under the policy of what was asked for, stopped at its size cap.

* :func:`read_page_body` (``kind="page"``): wanted only when the Content-Type is HTML/XHTML,
  or missing/generic and the first bytes sniff as HTML; a body labelled HTML whose first
  kilobyte is binary (:func:`~workers.ingestor.sniff.looks_binary`) is dropped with
  ``skipped="binary"``. Streamed through httpx's decoders (gzip/deflate bodies are capped
  after decompression, so a compression bomb stops at the cap too).
* :func:`read_sitemap_body` (``kind="sitemap"``): XML, plain text or gzip types; read as
  received — a gzipped sitemap (``application/gzip`` or ``Content-Encoding: gzip``) stays
  gzipped for the discovery stage, which decompresses with its own cap.
* :func:`read_capped` (robots.txt): whatever the type, decoded, capped.

Each stops reading as soon as it holds more than its cap: the rest is never downloaded
and the connection is dropped by ``aclose()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import httpx

from workers.ingestor.charset import is_generic_type, is_html_type, media_type, sniff_html
from workers.ingestor.sniff import SNIFF_BYTES, looks_binary
from workers.messages import truncate_body

__all__ = ["SITEMAP_TYPES", "Body", "read_capped", "read_page_body", "read_sitemap_body"]

_SNIFF_BYTES = 512
SITEMAP_TYPES = frozenset(
    {"text/xml", "application/xml", "text/plain", "application/gzip", "application/x-gzip"}
)
"""Content types a sitemap is read from (protocol: XML, plain-text URL lists, gzip of either)."""
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(slots=True)
class Body:
    content_type: str
    """Media type without parameters, lower-case ('' when the header was absent)."""
    header_charset: str | None
    data: bytes = b""
    """The body, at most ``max_bytes`` long (empty when skipped)."""
    size: int = 0
    """Bytes the server announced (Content-Length) or sent, whichever is larger."""
    truncated: bool = False
    skipped: str | None = None
    """Why the body was not kept, e.g. ``non-html content-type: image/png`` or ``binary``."""


def _announced(content_length: str | None, content_encoding: str | None) -> int:
    if content_length is None or not content_length.isdigit() or content_encoding:
        return 0  # an encoded body's Content-Length is not the size of the body we keep
    return int(content_length)


def _chunks(response: httpx.Response, headers: Mapping[str, str]) -> AsyncIterator[bytes]:
    # Identity bodies skip httpx's decoder and re-chunker (~50k instructions per page).
    return response.aiter_bytes() if "content-encoding" in headers else response.aiter_raw()


async def read_page_body(response: httpx.Response, headers: Mapping[str, str], *, max_bytes: int) -> Body:
    """Read ``response``'s body under the HTML-only, binary and size policies (module docstring).

    ``headers`` are the response headers with lower-case names (parsed once by the caller).
    """
    kind, charset = media_type(headers.get("content-type"))
    size = _announced(headers.get("content-length"), headers.get("content-encoding"))
    body = Body(content_type=kind, header_charset=charset, size=size)
    declared_html = is_html_type(kind)
    if not declared_html and not is_generic_type(kind):
        body.skipped = f"non-html content-type: {kind}"
        return body
    sniffing = not declared_html  # does a generic type hold HTML?
    checking = declared_html  # does declared HTML hold binary data?
    chunks: list[bytes] = []
    received = 0
    async for chunk in _chunks(response, headers):
        chunks.append(chunk)
        received += len(chunk)
        if checking and received >= SNIFF_BYTES:
            checking = False
            if looks_binary(chunks[0] if len(chunks[0]) >= SNIFF_BYTES else b"".join(chunks), charset):
                body.skipped = "binary"
                return body
        if sniffing and received >= _SNIFF_BYTES:
            sniffing = False
            if not sniff_html(b"".join(chunks)):
                body.skipped = _sniff_reason(kind)
                return body
        if received > max_bytes:
            break  # the rest is never downloaded: aclose() drops the connection
    data = b"".join(chunks)
    if checking and looks_binary(data, charset):
        body.skipped = "binary"
        return body
    if sniffing and not sniff_html(data):
        body.skipped = _sniff_reason(kind)
        return body
    body.data, body.truncated = truncate_body(data, max_bytes)
    body.size = max(body.size, received)
    return body


async def read_sitemap_body(response: httpx.Response, headers: Mapping[str, str], *, max_bytes: int) -> Body:
    """A sitemap as received (gzip kept), if its type is one of :data:`SITEMAP_TYPES`."""
    kind, charset = media_type(headers.get("content-type"))
    encoding = headers.get("content-encoding", "").strip().lower()
    body = Body(
        content_type=kind, header_charset=charset, size=_announced(headers.get("content-length"), None)
    )
    if kind not in SITEMAP_TYPES and not is_generic_type(kind):
        body.skipped = f"non-sitemap content-type: {kind}"
        return body
    keep_raw = encoding in ("", "identity", "gzip", "x-gzip")
    data, received = await _read_upto(response.aiter_raw() if keep_raw else response.aiter_bytes(), max_bytes)
    if kind not in SITEMAP_TYPES and not data.startswith(_GZIP_MAGIC) and data.lstrip()[:1] != b"<":
        body.skipped = f"non-sitemap content-type: {kind or 'none'} (body is neither XML nor gzip)"
        return body
    body.data, body.truncated = truncate_body(data, max_bytes)
    body.size = max(body.size, received)
    return body


async def read_capped(response: httpx.Response, headers: Mapping[str, str], *, max_bytes: int) -> Body:
    """The decoded body up to ``max_bytes``, whatever its type (robots.txt)."""
    kind, charset = media_type(headers.get("content-type"))
    body = Body(content_type=kind, header_charset=charset)
    data, body.size = await _read_upto(_chunks(response, headers), max_bytes)
    body.data, body.truncated = truncate_body(data, max_bytes)
    return body


async def _read_upto(chunks_in: AsyncIterator[bytes], max_bytes: int) -> tuple[bytes, int]:
    """(what was read, its size): stops once more than ``max_bytes`` arrived."""
    chunks: list[bytes] = []
    received = 0
    async for chunk in chunks_in:
        chunks.append(chunk)
        received += len(chunk)
        if received > max_bytes:
            break  # the rest is never downloaded: aclose() drops the connection
    return b"".join(chunks), received


def _sniff_reason(kind: str) -> str:
    return f"non-html content-type: {kind or 'none'} (body does not look like HTML)"
