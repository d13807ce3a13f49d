"""Storage layer: page metadata in PostgreSQL, page content in S3.

Entry point: :class:`PageStore` (``async with PageStore(pg, s3, storage) as store``;
``await store.save_batch(pages)``). Modules: ``migrate`` (numbered SQL migrations under an
advisory lock), ``pages`` (the batched UPSERT), ``objects`` (key layout, parallel PUTs),
``plan`` (which parts to write, and where), ``reads`` (typed rows), ``store`` (the facade).

Object key layout (bucket ``STREAMCRAWL_S3_BUCKET``), ``StorageSettings.object_layout``:

``page`` (default) — one object per content part, at keys derived from the url_hash alone::

    pages/<hh>/<url_hash>/raw.html.zst       raw HTML as fetched, zstd (``html_zstd`` as-is)
    pages/<hh>/<url_hash>/content.md         extracted main content, Markdown, UTF-8
    pages/<hh>/<url_hash>/rendered.html.zst  DOM after JavaScript, zstd (rich path only)

``hh`` is the first two hex characters of the url_hash (256 prefixes spread the keys). Keys
are per URL, not per content: a recrawl overwrites the page's objects (and deletes, after
the row write, a part the new version no longer has), so the bucket holds the current
version of every URL and nothing else (no garbage collection), and a redelivery rewrites
the same keys (never a second object). History is not kept: the row's
``content_hash``/``text_hash``/``simhash`` say whether a recrawl changed the page.

``segment`` — the parts a batch writes are packed into ``segments/<hh>/<blake2b>.seg``
objects of at most 4 MB, named by their content; the row holds each part's key and byte
range (``*_offset``, ``*_length``), readable with one ranged GET (HTML parts are whole zstd
frames). ~1 PUT per 4 MB instead of 2 per page: the layout for a request-rate-bound store
(see bench/stage_storage.py). A part replaced by a recrawl leaves unreferenced bytes in an
old segment, and a batch re-sent in a different composition after a crash between the PUT
and the UPSERT leaves an unreferenced segment: the price of packing.

In both layouts each row stores the blake2b-128 digest of every part; a part whose bytes
are unchanged is not written again, so a redelivery or an unchanged recrawl costs no
request. Skipped pages (``skipped`` set) get a row and no objects; empty Markdown gets no
object. A batch is written as ``write_concurrency`` concurrent sub-batches.

Outlinks are stored in the row (``outlinks``: newline-separated text, lz4-compressed by
TOAST; ``outlink_count``), not in a ``page_links`` table (~100-300 rows per page, replaced
on every recrawl) nor as JSON in S3 (a third request per page against a request-rate-bound
store). ``PageRow.outlinks`` gives them back as a list; SQL can expand them with
``unnest(string_to_array(outlinks, chr(10)))``. Lists are plain text rather than jsonb because
jsonb input parsing cost ~3x the insert rate in measurement.
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
