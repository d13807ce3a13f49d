"""Storage layer: page metadata in PostgreSQL, page content in S3.

Entry point: :class:`PageStore` (``async with PageStore(pg, s3, storage) as store``;
``await store.save_batch(pages)``). Modules: ``migrate`` (numbered SQL migrations under an
advisory lock), ``pages`` (the batched UPSERT), ``objects`` (key layout, parallel PUTs),
``reads`` (typed rows), ``store`` (the facade).

Object key layout (bucket ``STREAMCRAWL_S3_BUCKET``), derived from the url_hash alone::

    pages/<hh>/<url_hash>/raw.html.zst       raw HTML as fetched, zstd (``html_zstd`` as-is)
    pages/<hh>/<url_hash>/content.md         extracted main content, Markdown, UTF-8
    pages/<hh>/<url_hash>/rendered.html.zst  DOM after JavaScript, zstd (rich path only)

``hh`` is the first two hex characters of the url_hash (256 prefixes spread the keys). Keys
are per URL, not per content: a recrawl overwrites the page's objects, so the bucket holds
the current version of every URL and nothing else — no garbage collection, and a
redelivery rewrites the same keys (never a second object). History is not kept: the row's
``content_hash``/``text_hash``/``simhash`` say whether a recrawl changed the page.
Each row stores the blake2b-128 digest of every object it points to; an object whose bytes
are unchanged is not PUT again, so a redelivery or an unchanged recrawl costs no request.
Skipped pages (``skipped`` set) get a row and no objects; empty Markdown gets no object.

Outlinks are stored in the row (``outlinks`` jsonb array, ``outlink_count``), not in a
``page_links`` table (~100-300 rows per page, replaced on every recrawl) nor in S3 (a third
request per page against a request-rate-bound store).
"""

from __future__ import annotations

from workers.storage.objects import BlobStore, MemoryBlobStore, S3BlobStore, page_keys
from workers.storage.reads import ExportedPage, PageRow
from workers.storage.store import PageStore

__all__ = [
    "BlobStore",
    "ExportedPage",
    "MemoryBlobStore",
    "PageRow",
    "PageStore",
    "S3BlobStore",
    "page_keys",
]
