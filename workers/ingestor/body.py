"""Read one response body: HTML only, streamed, stopped at the size cap.

:func:`read_page_body` decides from the Content-Type whether the body is wanted at
all (HTML/XHTML, or a missing/generic type whose first bytes sniff as HTML), streams
it through httpx's decoders (gzip/deflate bodies are capped after decompression, so a
compression bomb stops at the cap too), and stops reading as soon as it holds more than
``max_bytes``: the rest is never downloaded and the connection is dropped by
``aclose()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import httpx

from workers.ingestor.charset import is_generic_type, is_html_type, media_type, sniff_html
from workers.messages import truncate_body

__all__ = ["Body", "read_page_body"]

_SNIFF_BYTES = 512


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
    """Why the body was not kept, e.g. ``non-html content-type: image/png``."""


def _announced(content_length: str | None, content_encoding: str | None) -> int:
    if content_length is None or not content_length.isdigit() or content_encoding:
        return 0  # an encoded body's Content-Length is not the size of the body we keep
    return int(content_length)


async def read_page_body(response: httpx.Response, headers: Mapping[str, str], *, max_bytes: int) -> Body:
    """Read ``response``'s body under the HTML-only and size policies (module docstring).

    ``headers`` are the response headers with lower-case names (parsed once by the caller).
    """
    kind, charset = media_type(headers.get("content-type"))
    size = _announced(headers.get("content-length"), headers.get("content-encoding"))
    body = Body(content_type=kind, header_charset=charset, size=size)
    if not is_html_type(kind) and not is_generic_type(kind):
        body.skipped = f"non-html content-type: {kind}"
        return body
    sniffing = not is_html_type(kind)
    chunks: list[bytes] = []
    received = 0
    # Identity bodies skip httpx's decoder and re-chunker (~50k instructions per page).
    chunks_in = response.aiter_bytes() if "content-encoding" in headers else response.aiter_raw()
    async for chunk in chunks_in:
        chunks.append(chunk)
        received += len(chunk)
        if sniffing and received >= _SNIFF_BYTES:
            sniffing = False
            if not sniff_html(b"".join(chunks)):
                body.skipped = _sniff_reason(kind)
                return body
        if received > max_bytes:
            break  # the rest is never downloaded: aclose() drops the connection
    data = b"".join(chunks)
    if sniffing and not sniff_html(data):
        body.skipped = _sniff_reason(kind)
        return body
    body.data, body.truncated = truncate_body(data, max_bytes)
    body.size = max(body.size, received)
    return body


def _sniff_reason(kind: str) -> str:
    return f"non-html content-type: {kind or 'none'} (body does not look like HTML)"
