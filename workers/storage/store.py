"""``PageStore``: the storage writer's one entry point (PostgreSQL rows + S3 objects).

A batch write (:meth:`PageStore.save_batch`) sorts every record into an outcome first:

* **skipped** (``skipped`` set, or ``noindex`` among its robots directives): no row, no object;
  an existing row of the URL is left as it was.
* **not modified** (status 304, no body): only the existing row's ``fetched_at`` moves
  (``unchanged``); without a row it is skipped as ``not_modified``.
* **stale or redelivered** (a row fetched at the same time or later exists): nothing is
  written; the stored version's refs are reported.
* **to store**: per sub-batch, concurrently: (1) WARC records built off the event loop,
  (2) packed into new objects and PUT in parallel, (3) one UPSERT for the sub-batch's rows
  (which queues the pages for search). Then one duplicate check for the whole batch. The
  search vectors are built afterwards by a background task (workers/storage/search_index.py).

A crash before (3) leaves objects no row references (collected after the grace period,
workers/storage/gc.py); a crash after (3) leaves rows whose fetch time equals the redelivered
records', so the redelivery writes nothing.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncGenerator, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType

import asyncpg

from workers.errors import ConfigError, DependencyUnavailable, PermanentError
from workers.messages import ProcessedPage, StoredPage
from workers.settings import PostgresSettings, S3Settings, StorageSettings
from workers.storage import gc
from workers.storage.dedup import mark_duplicates
from workers.storage.export import CorpusRow, count_corpus, iter_corpus
from workers.storage.migrate import apply_migrations
from workers.storage.objects import BlobStore, S3BlobStore, page_keys
from workers.storage.pages import fetch_existing, pg_errors, split_lines, upsert_pages
from workers.storage.plan import ObjectRefs, Part, pack
from workers.storage.reads import PageRow, count_rows, existing_hashes, fetch_row, fetch_validators
from workers.storage.search_index import SearchIndexer
from workers.storage.warc import PageRecords, build_page_records
from workers.storage.warc_read import decode_part

__all__ = ["PageStore", "outcome_of"]

# A stored version fetched more than this later than an incoming one makes the incoming stale.
_STALE_EPSILON_S = 1e-3
# Sub-batches smaller than this are not worth a concurrent round trip of their own.
_MIN_SUB_BATCH = 25
_NOT_MODIFIED = 304


def outcome_of(page: ProcessedPage) -> tuple[str, str | None]:
    """("store" | "skip" | "not_modified", skip reason) for one incoming page."""
    if page.skipped:
        return "skip", page.skipped
    if any(d.strip().lower() in ("noindex", "none") for d in page.robots):
        return "skip", "noindex"
    if page.status == _NOT_MODIFIED and not page.html_zstd:
        return "not_modified", None
    return "store", None


def _latest_per_hash(pages: Sequence[ProcessedPage]) -> list[ProcessedPage]:
    """The newest record per url_hash, in first-seen order (a batch may repeat a URL)."""
    best: dict[str, ProcessedPage] = {}
    for page in pages:
        seen = best.get(page.url_hash)
        if seen is None or (page.fetched_at, page.processed_at) >= (seen.fetched_at, seen.processed_at):
            best[page.url_hash] = page
    return list(best.values())


def _stored_page(
    page: ProcessedPage, *, outcome: str, reason: str | None, refs: ObjectRefs | None, at: float
) -> StoredPage:
    return StoredPage(
        url=page.url,
        url_hash=page.url_hash,
        final_url=page.final_url,
        status=page.status,
        route=page.route,
        stored_at=at,
        html_key=refs.key("html") if refs else None,
        markdown_key=refs.key("markdown") if refs else None,
        rendered_key=refs.key("rendered") if refs else None,
        batch=page.batch,
        rank=page.rank,
        outcome=outcome,
        reason=reason,
        ctx=page.ctx,
        request_id=page.request_id,
        host=page.host,
        outlinks=list(page.outlinks),
        outlinks_nofollow=list(page.outlinks_nofollow),
        robots=list(page.robots),
    )


class PageStore:
    """Page storage: ``async with PageStore(pg, s3, storage) as store: ...``.

    Entering creates the asyncpg pool, applies pending migrations (advisory-locked) and makes
    sure the bucket exists. Failures raise DependencyUnavailable (retry later) or a
    PermanentError subclass (RecordRejected: dead-letter the record; isolate it with
    :meth:`save_one` after a failed :meth:`save_batch`).
    """

    def __init__(
        self,
        pg: PostgresSettings,
        s3: S3Settings,
        storage: StorageSettings,
        *,
        blobs: BlobStore | None = None,
        command_timeout_s: float = 60.0,
    ) -> None:
        if storage.gc_grace_s / 2 <= command_timeout_s:
            raise ConfigError(
                f"STREAMCRAWL_STORAGE_GC_GRACE_S={storage.gc_grace_s:g} is too short: it must exceed twice "
                f"the {command_timeout_s:g} s PostgreSQL command timeout (default 3600)"
            )
        self._pg = pg
        self._storage = storage
        self._blobs: BlobStore = blobs or S3BlobStore(s3, parallelism=storage.s3_parallelism)
        self._command_timeout_s = command_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._encoder: ThreadPoolExecutor | None = None
        self._written_since_analyze = 0
        self._rows_at_analyze = 0.0
        self._writes_in_flight = 0
        self._indexer = SearchIndexer(
            lambda: self.pool,
            batch_rows=storage.search_index_batch,
            max_delay_s=storage.search_index_max_delay_s,
            writing=lambda: self._writes_in_flight > 0,
        )
        self.puts = 0
        """Objects written since start."""

    async def __aenter__(self) -> PageStore:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        if self._pool is not None:
            return
        with pg_errors("connect"):
            pool = await asyncpg.create_pool(
                self._pg.dsn(),
                min_size=1,
                max_size=max(1, self._pg.pool_size),
                command_timeout=self._command_timeout_s,
            )
        try:
            with pg_errors("migration"):
                async with pool.acquire() as conn:
                    await apply_migrations(conn)
            await self._blobs.start()
        except BaseException:
            await pool.close()
            await self._blobs.close()
            raise
        self._pool = pool
        self._indexer.wake()  # pages queued before a crash or restart

    async def close(self) -> None:
        """Close the pool and the object-store client; safe to call twice."""
        await self._indexer.close()  # before the pool goes: a batch in progress is rolled back
        pool, self._pool = self._pool, None
        encoder, self._encoder = self._encoder, None
        try:
            if pool is not None:
                try:
                    # close() waits for every connection to come back; a caller that left a
                    # row stream open must not hang shutdown.
                    await asyncio.wait_for(pool.close(), timeout=10)
                except TimeoutError:
                    pool.terminate()
        finally:
            if encoder is not None:
                encoder.shutdown(wait=False, cancel_futures=True)
            await self._blobs.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DependencyUnavailable("PageStore is not started (use `async with PageStore(...)`)")
        return self._pool

    @property
    def blobs(self) -> BlobStore:
        return self._blobs

    @property
    def search_indexer(self) -> SearchIndexer:
        """The background search indexer (its ``indexed`` and ``busy_s`` counters)."""
        return self._indexer

    # -- writes -------------------------------------------------------------------------

    async def save_batch(self, pages: Sequence[ProcessedPage]) -> list[StoredPage]:
        """Store ``pages``; one StoredPage per input, in input order (see the module doc).

        On failure every sub-batch has finished before the error is raised; a sub-batch that
        succeeded is not written again when the batch is retried (its rows are found).
        """
        if not pages:
            return []
        for page in pages:
            page_keys(page.url_hash)  # validate every url_hash before writing anything
        verdicts = [outcome_of(p) for p in pages]
        self._writes_in_flight += 1
        self._indexer.writes_started()
        try:
            return await self._save(pages, verdicts)
        finally:
            self._writes_in_flight -= 1
            self._indexer.writes_finished()
            if self._pool is not None:
                self._indexer.wake()  # the write may have queued pages for search

    async def _save(
        self, pages: Sequence[ProcessedPage], verdicts: list[tuple[str, str | None]]
    ) -> list[StoredPage]:
        to_store = _latest_per_hash([p for p, (o, _) in zip(pages, verdicts, strict=True) if o == "store"])
        not_modified = _latest_per_hash(
            [p for p, (o, _) in zip(pages, verdicts, strict=True) if o == "not_modified"]
        )
        refs, touched = await self._store(to_store)
        unchanged = await self._touch(not_modified)
        at = time.time()
        out = []
        for page, (verdict, reason) in zip(pages, verdicts, strict=True):
            if verdict == "store":
                out.append(_stored_page(page, outcome="stored", reason=None, refs=refs[page.url_hash], at=at))
            elif verdict == "not_modified" and page.url_hash in unchanged:
                out.append(
                    _stored_page(unchanged[page.url_hash], outcome="unchanged", reason=None, refs=None, at=at)
                )
            else:
                out.append(
                    _stored_page(page, outcome="skipped", reason=reason or "not_modified", refs=None, at=at)
                )
        if touched:
            await self._keep_statistics_fresh(len(touched))
            await mark_duplicates(self.pool, touched, max_distance=self._storage.near_duplicate_distance)
        return out

    async def _keep_statistics_fresh(self, written: int) -> None:
        """ANALYZE ``pages`` each time this writer has added as many rows as the table had.

        The duplicate check's plan depends on the table's statistics: on a table that grew
        from empty faster than autovacuum analyses it, PostgreSQL scanned whole indexes (cost
        growing with the table: 40 ms per page at 20k rows instead of 0.06 ms). Doubling
        keeps this to O(log rows) ANALYZE runs (~0.1-0.3 s each at 100k rows)."""
        self._written_since_analyze += written
        if self._written_since_analyze < max(1000.0, self._rows_at_analyze):
            return
        with pg_errors("ANALYZE pages"):
            async with self.pool.acquire() as conn:
                await conn.execute("ANALYZE pages")
                self._rows_at_analyze = float(
                    await conn.fetchval("SELECT reltuples FROM pg_class WHERE oid = 'pages'::regclass")
                )
        self._written_since_analyze = 0

    async def _store(self, unique: list[ProcessedPage]) -> tuple[dict[str, ObjectRefs], list[str]]:
        """Write the pages that need it; (refs per url_hash, url_hashes whose rows were written)."""
        if not unique:
            return {}, []
        k = max(1, min(self._storage.write_concurrency, len(unique) // _MIN_SUB_BATCH))
        size = -(-len(unique) // k)
        outcomes = await asyncio.gather(
            *(self._write(unique[i : i + size]) for i in range(0, len(unique), size)), return_exceptions=True
        )
        refs: dict[str, ObjectRefs] = {}
        written: list[str] = []
        errors: list[BaseException] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                errors.append(outcome)
            else:
                refs.update(outcome[0])
                written += outcome[1]
        if errors:
            # A rejected record is the most specific verdict: the caller isolates it with save_one.
            raise next((e for e in errors if isinstance(e, PermanentError)), errors[0])
        return refs, written

    def _encode_pool(self) -> ThreadPoolExecutor:
        if self._encoder is None:
            # hashlib, ISA-L and zstd release the GIL: records of two sub-batches build at once.
            self._encoder = ThreadPoolExecutor(
                max(1, self._storage.write_concurrency), thread_name_prefix="warc"
            )
        return self._encoder

    async def _write(self, pages: list[ProcessedPage]) -> tuple[dict[str, ObjectRefs], list[str]]:
        """Lookup, build + PUT new objects, UPSERT: one sub-batch of distinct url_hashes."""
        pool = self.pool
        existing = await fetch_existing(pool, [p.url_hash for p in pages])
        refs: dict[str, ObjectRefs] = {}
        to_write: list[ProcessedPage] = []
        for page in pages:
            old = existing.get(page.url_hash)
            if old is not None and old.fetched_at >= page.fetched_at - _STALE_EPSILON_S:
                refs[page.url_hash] = old.refs  # this fetch (or a newer one) is already stored
            else:
                to_write.append(page)
        if not to_write:
            return refs, []
        loop = asyncio.get_running_loop()
        records: list[PageRecords] = await loop.run_in_executor(
            self._encode_pool(), lambda: [build_page_records(p) for p in to_write]
        )
        blobs, new_refs = pack(records, max_bytes=self._storage.warc_object_bytes, now=time.time())
        put_started = time.monotonic()
        await self._blobs.put_many(blobs)
        self.puts += len(blobs)
        # The collector may delete an unreferenced object once it is gc_grace_s old: never let a
        # row point at one that could be that old by the time the UPSERT (bounded by the
        # command timeout) commits. The retry writes fresh objects (workers/storage/gc.py).
        if time.monotonic() - put_started + self._command_timeout_s > self._storage.gc_grace_s / 2:
            raise DependencyUnavailable(
                f"writing {len(blobs)} objects took {time.monotonic() - put_started:.0f} s, too long to "
                "reference them safely before garbage collection; writing them again"
            )
        await upsert_pages(pool, to_write, new_refs, [r.mime_detected for r in records])
        refs.update(zip((p.url_hash for p in to_write), new_refs, strict=True))
        return refs, [p.url_hash for p in to_write]

    async def _touch(self, pages: list[ProcessedPage]) -> dict[str, ProcessedPage]:
        """304s: move ``fetched_at`` of the existing rows. Returns, per url_hash that has a row,
        the page with the stored links and robots directives (a 304 has no body to read them
        from), so the discovery stage can still follow them."""
        if not pages:
            return {}
        with pg_errors(f"update of {len(pages)} unchanged pages"):
            rows = await self.pool.fetch(
                "WITH u AS (SELECT * FROM unnest($1::text[], $2::float8[]) AS u(url_hash, fetched_at))"
                " UPDATE pages p SET fetched_at = GREATEST(p.fetched_at, to_timestamp(u.fetched_at)),"
                " updated_at = now() FROM u WHERE p.url_hash = u.url_hash"
                " RETURNING p.url_hash, p.outlinks, p.outlinks_nofollow, p.robots",
                [p.url_hash for p in pages],
                [float(p.fetched_at) for p in pages],
            )
        by_hash = {p.url_hash: p for p in pages}
        return {
            r["url_hash"]: dataclasses.replace(
                by_hash[r["url_hash"]],
                outlinks=split_lines(r["outlinks"]),
                outlinks_nofollow=split_lines(r["outlinks_nofollow"]),
                robots=split_lines(r["robots"]),
            )
            for r in rows
        }

    async def index_search(self) -> int:
        """Build the search vectors of every page queued for one now (the background indexer
        does it shortly after each write); returns how many were built."""
        return await self._indexer.drain()

    async def save_one(self, page: ProcessedPage) -> StoredPage:
        """Store one page; used to isolate a poison record after a failed batch."""
        return (await self.save_batch([page]))[0]

    # -- reads --------------------------------------------------------------------------

    async def get_page(self, url_hash: str) -> PageRow | None:
        return await fetch_row(self.pool, url_hash)

    async def count_pages(self, *, batch: str | None = None) -> int:
        return await count_rows(self.pool, batch=batch)

    async def stored_hashes(self, url_hashes: Iterable[str]) -> set[str]:
        """The subset of ``url_hashes`` that already has a row (frontier dedupe)."""
        return await existing_hashes(self.pool, list(url_hashes))

    async def validators(self, url_hashes: Iterable[str]) -> dict[str, tuple[str | None, str | None]]:
        """``{url_hash: (etag, last_modified)}`` for conditional recrawls (stored pages with either)."""
        return await fetch_validators(self.pool, list(url_hashes))

    async def read_part(self, part: Part | None) -> bytes | None:
        """The stored bytes of one part (a gzipped WARC record, or a first-build object)."""
        if part is None:
            return None
        return await self._blobs.get(part.key, offset=part.offset or 0, length=part.length)

    async def get_content(self, url_hash: str, part: str) -> bytes | None:
        """One part of a stored page, decoded: ``html`` (the body as fetched), ``markdown``,
        ``text``, ``rendered`` (UTF-8 / the page's bytes) or ``warc`` (the page's gzipped
        records). None when the page is not stored or has no such part."""
        row = await self.get_page(url_hash)
        if row is None:
            return None
        if part == "warc":
            run = row.refs.warc
            return (
                None if run is None else await self._blobs.get(run.key, offset=run.offset, length=run.length)
            )
        data = await self.read_part(getattr(row.refs, part))
        return None if data is None else decode_part(data, part=part, warc=row.refs.is_warc)

    async def get_markdown(self, url_hash: str) -> str | None:
        """The page's Markdown ("" when it has none), or None when the URL is not stored."""
        row = await self.get_page(url_hash)
        if row is None:
            return None
        data = await self.read_part(row.refs.markdown)
        if data is None:
            return ""
        return decode_part(data, part="markdown", warc=row.refs.is_warc).decode("utf-8", "replace")

    async def count_corpus(self, *, batch: str | None = None, dedup: bool = False) -> int:
        return await count_corpus(self.pool, batch=batch, dedup=dedup)

    def iter_corpus(
        self, *, batch: str | None = None, dedup: bool = False, parts: Sequence[str] = ("text", "markdown")
    ) -> AsyncGenerator[CorpusRow, None]:
        """Stored pages with ``parts`` of their content (see workers/storage/export.py)."""
        return iter_corpus(self.pool, self._blobs, batch=batch, dedup=dedup, parts=parts)

    # -- consistency --------------------------------------------------------------------

    async def fsck(self, *, repair: bool = False, grace_s: float | None = None) -> gc.FsckReport:
        grace = self._storage.gc_grace_s if grace_s is None else grace_s
        report = await gc.check(self.pool, self._blobs, grace_s=grace)
        return await gc.repair(self.pool, self._blobs, report) if repair else report

    async def collect_garbage(self) -> list[str] | None:
        return await gc.collect_garbage(self.pool, self._blobs, grace_s=self._storage.gc_grace_s)
