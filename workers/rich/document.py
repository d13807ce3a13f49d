"""What Chromium is answered with: the page's document from its RawPage, headers fit for a fulfil.

The renderer never fetches the page again: the document is the body the ingestor fetched,
served at its final URL (the redirect chain is not re-followed) with the status and the
response headers as received, minus what no longer describes the body we hand over
(``Content-Encoding``, ``Content-Length``: the body is decoded) or the connection
(hop-by-hop headers), and minus ``Set-Cookie``: like the ingestor, the browser keeps no
state between requests. ``Content-Type`` carries the charset the ingestor detected, so
Chromium decodes the bytes the way the fast path did.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from workers.messages import RawPage

__all__ = ["Document", "document_of", "fulfil_headers"]

_DROPPED = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-encoding",
        "content-length",
        "set-cookie",
        "set-cookie2",
        "alt-svc",
    }
)


def fulfil_headers(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Response headers for ``route.fulfill``: lower-case names, repeats joined, see module docstring."""
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        if key in _DROPPED:
            continue
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


@dataclass(frozen=True, slots=True)
class Document:
    """The main document as Chromium receives it."""

    url: str
    status: int
    headers: dict[str, str]
    body: bytes


def document_of(page: RawPage) -> Document:
    """The document of ``page``: its body, status and headers, at its final URL."""
    pairs = page.response_headers or [[k, v] for k, v in page.headers.items()]
    headers = fulfil_headers((str(pair[0]), str(pair[1])) for pair in pairs if len(pair) == 2)
    kind = page.content_type or "text/html"
    headers["content-type"] = f"{kind}; charset={page.charset}" if page.charset else kind
    return Document(url=page.final_url, status=page.status, headers=headers, body=page.html_bytes())
