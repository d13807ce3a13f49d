"""``GET /pages/{url_hash}/content?format=…``: every content read of the API goes through here.

:func:`read_content` is the one function that knows where each format lives, so a new
storage layout changes this module only:

* ``markdown`` — the ``markdown`` part (S3, UTF-8);
* ``html`` — the ``html`` part, raw HTML as fetched (S3, zstd): sent as stored with
  ``Content-Encoding: zstd`` to clients that accept it, decompressed otherwise;
* ``rendered`` — the ``rendered`` part, the DOM after JavaScript (S3, zstd; rich path only);
* ``text`` — the plain main text (``pages.text`` in PostgreSQL);
* ``warc`` — the page's WARC record, a byte range of a WARC object (``warc_key``,
  ``warc_offset``, ``warc_length`` columns, when the storage layer writes them).

S3 parts are read with :meth:`PageStore.read_part`: one GET, ranged when the part sits inside
a larger object (the ``segment`` layout, WARC files). A page without the part is a 404 that
says so; a part whose object is gone is a 404 that names the key.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import asyncpg

from workers.api.errors import ApiError
from workers.api.models import ContentFormat
from workers.messages import decompress_html
from workers.storage import PageRow, PageStore
from workers.storage.pages import part_from_record
from workers.storage.plan import Part

__all__ = ["Content", "available_formats", "has_warc_columns", "read_content"]

_MEDIA = {
    "markdown": "text/markdown; charset=utf-8",
    "text": "text/plain; charset=utf-8",
    "html": "text/html",
    "rendered": "text/html; charset=utf-8",
    "warc": "application/warc",
}
_S3_PARTS = {"markdown": "markdown", "html": "html", "rendered": "rendered"}
_ZSTD_PARTS = frozenset({"html", "rendered"})
_WARC_COLUMNS = ("warc_key", "warc_offset", "warc_length")


@dataclass(frozen=True, slots=True)
class Content:
    body: bytes
    media_type: str
    etag: str
    encoding: str | None = None
    """``zstd`` when ``body`` is sent compressed as stored."""


def available_formats(row: PageRow, *, has_text: bool, has_warc: bool) -> dict[str, bool]:
    refs = row.refs
    return {
        "markdown": refs.markdown is not None,
        "text": has_text,
        "html": refs.html is not None,
        "rendered": refs.rendered is not None,
        "warc": has_warc,
    }


async def has_warc_columns(pool: asyncpg.Pool) -> bool:
    """Whether ``pages`` has the WARC record columns (the storage layer's WARC output)."""
    n = await pool.fetchval(
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'pages'"
        " AND column_name = ANY($1::text[])",
        list(_WARC_COLUMNS),
    )
    return int(n) == len(_WARC_COLUMNS)


def _missing(url_hash: str, fmt: str, why: str) -> ApiError:
    return ApiError(404, f"page {url_hash} has no {fmt} content: {why}")


async def _read(store: PageStore, part: Part, url_hash: str, fmt: str) -> bytes:
    data = await store.read_part(part)
    if data is None:
        raise _missing(
            url_hash,
            fmt,
            f"its object {part.key} is missing from the object store (recrawl the URL to store it again)",
        )
    return data


async def read_content(
    store: PageStore,
    url_hash: str,
    fmt: ContentFormat,
    *,
    accept_zstd: bool,
    warc_columns: bool,
    timeout_s: float,
) -> Content:
    """The page's content in ``fmt``; ApiError 404 when the page or that part does not exist."""
    pool = store.pool
    if fmt in _S3_PARTS:
        name = _S3_PARTS[fmt]
        record = await pool.fetchrow(
            f"SELECT {name}_key, {name}_digest, {name}_offset, {name}_length FROM pages WHERE url_hash = $1",
            url_hash,
            timeout=timeout_s,
        )
        if record is None:
            raise ApiError(404, f"no stored page with url_hash {url_hash}")
        part = part_from_record(record, name)
        if part is None:
            why = (
                "only pages rendered in a browser (route rich) have one"
                if fmt == "rendered"
                else "none was stored"
            )
            raise _missing(url_hash, fmt, why)
        data = await _read(store, part, url_hash, fmt)
        if fmt in _ZSTD_PARTS:
            if accept_zstd:
                return Content(data, _MEDIA[fmt], f'"{part.digest}-zstd"', encoding="zstd")
            data = decompress_html(data)
        return Content(data, _MEDIA[fmt], f'"{part.digest}"')
    if fmt == "text":
        record = await pool.fetchrow(
            "SELECT text FROM pages WHERE url_hash = $1", url_hash, timeout=timeout_s
        )
        if record is None:
            raise ApiError(404, f"no stored page with url_hash {url_hash}")
        if record["text"] is None:
            raise _missing(url_hash, fmt, "it was stored before plain text was extracted (recrawl it)")
        body = record["text"].encode("utf-8")
        return Content(body, _MEDIA[fmt], f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}"')
    if not warc_columns:
        if (
            await pool.fetchval("SELECT 1 FROM pages WHERE url_hash = $1", url_hash, timeout=timeout_s)
            is None
        ):
            raise ApiError(404, f"no stored page with url_hash {url_hash}")
        raise _missing(url_hash, fmt, "this deployment's storage layer writes no WARC records")
    record = await pool.fetchrow(
        "SELECT warc_key, warc_offset, warc_length FROM pages WHERE url_hash = $1",
        url_hash,
        timeout=timeout_s,
    )
    if record is None:
        raise ApiError(404, f"no stored page with url_hash {url_hash}")
    if record["warc_key"] is None:
        raise _missing(url_hash, fmt, "it was stored before WARC output was enabled")
    part = Part(record["warc_key"], "", record["warc_offset"], record["warc_length"])
    data = await _read(store, part, url_hash, fmt)
    etag = f'"{record["warc_key"].rsplit("/", 1)[-1]}-{record["warc_offset"] or 0}"'
    return Content(data, _MEDIA[fmt], etag)
