"""``GET /pages/{url_hash}/content?format=…``: every content read of the API goes through here.

Content lives where the storage layer put it (workers/storage): for pages stored as WARC,
each part is a byte range of a WARC object — ``html`` the ``response`` record's payload (the
body as fetched), ``markdown``, ``text`` and ``rendered`` its ``conversion`` records, ``warc``
the page's whole run of gzipped records; rows of the first build keep per-part objects (zstd
HTML, UTF-8 Markdown). Every part is one ranged GET through :class:`PageStore`, decoded by
the storage layer's one decoder (``warc_read.decode_part``), so a layout change stays there.
A page without the part is a 404 that says so; a part whose object is gone is a 404 that
names the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from workers.api.errors import ApiError
from workers.api.models import ContentFormat
from workers.storage import PageRow, PageStore
from workers.storage.plan import Part
from workers.storage.warc_read import decode_part

__all__ = ["Content", "available_formats", "read_content"]

_MEDIA = {
    "markdown": "text/markdown; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "html": "text/html",
    "rendered": "text/html; charset=utf-8",
    "warc": "application/warc",
}


@dataclass(frozen=True, slots=True)
class Content:
    body: bytes
    media_type: str
    etag: str
    encoding: str | None = None
    """A Content-Encoding of ``body`` as sent (None: identity)."""


def available_formats(row: PageRow) -> dict[str, bool]:
    refs = row.refs
    return {
        "markdown": refs.markdown is not None,
        "text": refs.text is not None,
        "html": refs.html is not None,
        "rendered": refs.rendered is not None,
        "warc": refs.warc is not None,
    }


def _missing(url_hash: str, fmt: str, why: str) -> ApiError:
    return ApiError(404, f"page {url_hash} has no {fmt} content: {why}")


_WHY_ABSENT = {
    "rendered": "only pages rendered in a browser (route rich) have one",
    "text": "it was stored before plain text was extracted (recrawl it)",
    "warc": "it was stored before WARC output existed (recrawl it)",
}


async def read_content(store: PageStore, url_hash: str, fmt: ContentFormat) -> Content:
    """The page's content in ``fmt``; ApiError 404 when the page or that part does not exist."""
    row = await store.get_page(url_hash)
    if row is None:
        raise ApiError(404, f"no stored page with url_hash {url_hash}")
    refs = row.refs
    part: Part | None
    if fmt == "warc":
        run = refs.warc
        part = None if run is None else Part(run.key, "", run.offset, run.length)
    else:
        part = getattr(refs, fmt)
    if part is None:
        raise _missing(url_hash, fmt, _WHY_ABSENT.get(fmt, "none was stored"))
    data = await store.read_part(part)
    if data is None:
        raise _missing(
            url_hash,
            fmt,
            f"its object {part.key} is missing from the object store (recrawl the URL to store it again)",
        )
    body = data if fmt == "warc" else decode_part(data, part=fmt, warc=refs.is_warc)
    tag = part.digest or hashlib.blake2b(data, digest_size=16).hexdigest()
    etag = f'"{tag}-{part.offset or 0}"'
    return Content(body, _MEDIA[fmt], etag, encoding=None)
