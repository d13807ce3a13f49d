"""Storage layer: page metadata in PostgreSQL, page content as WARC records in S3.

Entry point: :class:`PageStore` (``async with PageStore(pg, s3, storage) as store``;
``await store.save_batch(pages)``). Modules, one concern each: ``migrate`` (numbered SQL
migrations under an advisory lock), ``warc`` (a page's WARC records), ``plan`` (packing
records into objects), ``objects`` (keys, parallel PUT/GET/LIST), ``pages`` (the batched
UPSERT), ``dedup`` (``duplicate_of``), ``reads`` (typed rows, validators), ``warc_read``
(payloads back), ``export`` (the corpus as a row stream), ``parquet`` (the columnar export),
``gc`` (fsck and garbage collection), ``store`` (the facade).

Object layout (bucket ``STREAMCRAWL_S3_BUCKET``)::

    warc/YYYY/MM/DD/YYYYMMDDHHMMSS-<24 hex>.warc.gz   WARC 1.1, one gzip member per record

A sub-batch's pages are packed, in order, into objects of at most
``STREAMCRAWL_STORAGE_WARC_OBJECT_BYTES`` (4 MB): ~1 PUT per ~100 real pages instead of 2 per
page (the object store's request rate is the bottleneck here). Each object opens with a
``warcinfo`` record; per page: ``request``, ``response``, ``metadata`` and ``conversion``
records for the plain text, the Markdown and (rich path) the rendered DOM (warc.py says what
each holds). The row keeps each part's object and byte range (``html_*`` = the response
record, ``markdown_*``, ``text_*``, ``rendered_*``; ``warc_*`` = the page's whole run), so any
part is one ranged GET; ``PageStore.get_content(url_hash, part)`` returns it decoded.

Safety: keys are never reused, so no write can replace bytes a row points at; the UPSERT keeps
the newest version by ``fetched_at`` (a stale redelivery changes nothing) and each row points
at its own records. Objects no row references (a crash between PUT and UPSERT, or pages all
recrawled since) are deleted by the garbage collector once older than
``STREAMCRAWL_STORAGE_GC_GRACE_S`` (gc.py explains why that is safe while writers run);
``streamcrawl fsck`` reports both directions of inconsistency.

Outcomes: skipped pages (``skipped`` set, or robots ``noindex``) get no row and no object; a
304 only moves ``fetched_at``; every input yields one ``StoredPage`` with its outcome.

Rows of the first build (``warc_key`` NULL: ``pages/<hh>/<url_hash>/{raw.html.zst,content.md,
rendered.html.zst}`` or ``segments/…`` byte ranges of zstd frames) stay readable through the
same calls; no migration of their objects is needed.

Outlinks are stored in the row (``outlinks``: newline-separated text, lz4-compressed by
TOAST; ``outlink_count``), not in a ``page_links`` table nor in S3. Lists are plain text rather
than jsonb because jsonb input parsing cost ~3x the insert rate in measurement.
"""

from __future__ import annotations

from workers.storage.export import CorpusRow
from workers.storage.objects import BlobStore, MemoryBlobStore, S3BlobStore, page_keys
from workers.storage.reads import PageRow
from workers.storage.store import PageStore

__all__ = [
    "BlobStore",
    "CorpusRow",
    "MemoryBlobStore",
    "PageRow",
    "PageStore",
    "S3BlobStore",
    "page_keys",
]
