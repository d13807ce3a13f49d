"""``PageStore``: the storage writer's one entry point (PostgreSQL rows + S3 objects).

Order of a batch write: (1) validate every record and derive its keys; then per sub-batch,
concurrently: (2) look up what is already stored for its url_hashes (one query), (3) PUT
only objects whose bytes changed, in parallel, (4) UPSERT its rows in one statement;
finally (5) return one StoredPage per input in input order. A crash anywhere before (4) leaves no row; the redelivery rewrites the
same keys. A crash after (4) leaves rows whose digests match, so the redelivery costs no PUT.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Sequence
from types import TracebackType

import asyncpg

from workers.errors import DependencyUnavailable, PermanentError
from workers.messages import ProcessedPage, StoredPage
from workers.settings import PostgresSettings, S3Settings, StorageSettings
from workers.storage.migrate import apply_migrations
from workers.storage.objects import BlobStore, S3BlobStore, page_keys
from workers.storage.pages import fetch_existing, part_from_record, pg_errors, upsert_pages
from workers.storage.plan import ObjectRefs, Part, plan_writes
from workers.storage.reads import (
    ExportedPage,
    PageRow,
    count_rows,
    existing_hashes,
    fetch_chunk,
    fetch_row,
)

__all__ = ["PageStore"]

# A stored version fetched more than this later than an incoming one makes the incoming stale.
_STALE_EPSILON_S = 1e-3
# Sub-batches smaller than this are not worth a concurrent round trip of their own.
_MIN_SUB_BATCH = 25


def _latest_per_hash(pages: Sequence[ProcessedPage]) -> list[ProcessedPage]:
    """The newest record per url_hash, in first-seen order (a batch may repeat a URL)."""
    best: dict[str, ProcessedPage] = {}
    for page in pages:
        seen = best.get(page.url_hash)
        if seen is None or (page.fetched_at, page.processed_at) >= (seen.fetched_at, seen.processed_at):
            best[page.url_hash] = page
    return list(best.values())


class PageStore:
    """Idempotent page storage: ``async with PageStore(pg, s3, storage) as store: ...``.

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
        self._pg = pg
        self._storage = storage
        self._blobs: BlobStore = blobs or S3BlobStore(s3, parallelism=storage.s3_parallelism)
        self._command_timeout_s = command_timeout_s
        self._pool: asyncpg.Pool | None = None
        self.puts = 0
        """Objects written since start (skipped unchanged objects are not counted)."""

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

    async def close(self) -> None:
        """Close the pool and the object-store client; safe to call twice."""
        pool, self._pool = self._pool, None
        try:
            if pool is not None:
                await pool.close()
        finally:
            await self._blobs.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DependencyUnavailable("PageStore is not started (use `async with PageStore(...)`)")
        return self._pool

    # -- writes -------------------------------------------------------------------------

    async def save_batch(self, pages: Sequence[ProcessedPage]) -> list[StoredPage]:
        """Store ``pages`` (objects first, then their rows in one UPSERT); one StoredPage per input.

        The batch is written as up to ``StorageSettings.write_concurrency`` sub-batches at
        once (each: lookup, PUTs, UPSERT), so one sub-batch's PUTs overlap another's UPSERT.
        On failure every sub-batch has finished before the error is raised; a sub-batch that
        succeeded is simply rewritten (idempotently) when the batch is retried.
        """
        if not pages:
            return []
        for page in pages:
            page_keys(page.url_hash)  # validate every url_hash before writing anything
        unique = _latest_per_hash(pages)
        k = max(1, min(self._storage.write_concurrency, len(unique) // _MIN_SUB_BATCH))
        size = -(-len(unique) // k)
        outcomes = await asyncio.gather(
            *(self._write(unique[i : i + size]) for i in range(0, len(unique), size)), return_exceptions=True
        )
        refs: dict[str, ObjectRefs] = {}
        errors: list[BaseException] = []
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                errors.append(outcome)
            else:
                refs.update(outcome)
        if errors:
            # A rejected record is the most specific verdict: the caller isolates it with save_one.
            raise next((e for e in errors if isinstance(e, PermanentError)), errors[0])
        stored_at = time.time()
        return [
            StoredPage(
                url=p.url,
                url_hash=p.url_hash,
                final_url=p.final_url,
                status=p.status,
                route=p.route,
                stored_at=stored_at,
                html_key=refs[p.url_hash].key("html"),
                markdown_key=refs[p.url_hash].key("markdown"),
                rendered_key=refs[p.url_hash].key("rendered"),
                batch=p.batch,
                rank=p.rank,
                outcome="skipped" if p.skipped else "stored",
                reason=p.skipped,
                ctx=p.ctx,
                request_id=p.request_id,
                host=p.host,
                outlinks=p.outlinks,
                outlinks_nofollow=p.outlinks_nofollow,
                robots=p.robots,
            )
            for p in pages
        ]

    async def _write(self, pages: list[ProcessedPage]) -> dict[str, ObjectRefs]:
        """Lookup, PUT what changed, UPSERT: one sub-batch of distinct url_hashes."""
        pool = self.pool
        existing = await fetch_existing(pool, [p.url_hash for p in pages])
        refs: dict[str, ObjectRefs] = {}
        to_write: list[ProcessedPage] = []
        for page in pages:
            old = existing.get(page.url_hash)
            if old is not None and old.fetched_at > page.fetched_at + _STALE_EPSILON_S:
                refs[page.url_hash] = old.refs  # a newer version is already stored: keep it
            else:
                to_write.append(page)
        prior = [existing[p.url_hash].refs if p.url_hash in existing else None for p in to_write]
        plan = plan_writes(to_write, prior, layout=self._storage.object_layout)
        await self._blobs.put_many(plan.blobs)
        self.puts += len(plan.blobs)
        await upsert_pages(pool, to_write, plan.refs)
        if plan.stale:
            await self._blobs.delete_many(plan.stale)
        refs.update(zip((p.url_hash for p in to_write), plan.refs, strict=True))
        return refs

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

    async def get_markdown(self, url_hash: str) -> str | None:
        """The page's Markdown ("" when it has none), or None when the URL is not stored."""
        row = await self.get_page(url_hash)
        if row is None:
            return None
        return await self._markdown(row.refs.markdown)

    async def read_part(self, part: Part | None) -> bytes | None:
        """The bytes of one content part (zstd for HTML parts), None if absent or missing."""
        if part is None:
            return None
        return await self._blobs.get(part.key, offset=part.offset or 0, length=part.length)

    async def _markdown(self, part: Part | None) -> str:
        data = await self.read_part(part)
        return "" if data is None else data.decode("utf-8", "replace")

    async def iter_pages(
        self, *, batch: str | None = None, chunk_size: int = 200, with_markdown: bool = True
    ) -> AsyncIterator[ExportedPage]:
        """Every stored page in url_hash order, Markdown read from S3 a chunk at a time."""
        after = ""
        while True:
            records = await fetch_chunk(self.pool, after=after, limit=chunk_size, batch=batch)
            if not records:
                return
            if with_markdown:
                texts = await asyncio.gather(
                    *(self._markdown(part_from_record(r, "markdown")) for r in records)
                )
            else:
                texts = [""] * len(records)
            for r, text in zip(records, texts, strict=True):
                yield ExportedPage(
                    url_hash=r["url_hash"],
                    url=r["url"],
                    final_url=r["final_url"],
                    title=r["title"],
                    description=r["description"],
                    lang=r["lang"],
                    route=r["route"],
                    score=r["score"],
                    markdown=text,
                    fetched_at=r["fetched_at"],
                )
            after = records[-1]["url_hash"]
