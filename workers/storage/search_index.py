"""The search index, built off the write path: queued pages become ``page_search`` vectors.

The triggers on ``pages`` (migration 0022) only queue the url_hash of a page inserted or whose
title or text changed; :func:`index_queued` turns up to ``batch_rows`` queued pages into their
vectors in one statement (``page_search_index``: delete from the queue, compute, upsert — one
transaction, so a crash loses neither). :class:`SearchIndexer` is the storage writer's
background task that runs it:

* woken after every write (:meth:`wake`), and once at start (pages queued before a crash or a restart);
* it gives way to writes: while a batch is being written it waits for the writer to be idle,
  but at most ``StorageSettings.search_index_max_delay_s`` between two of its batches, so
  under sustained load search still follows, ``search_index_batch`` pages per delay at least;
* it stops when the queue is empty, and is cancelled on close (the queue is durable).

So a search sees a page shortly after it is stored (usually within one writer batch), not in
the same transaction. Tests and tools that need it now call :meth:`PageStore.index_search`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

import asyncpg

from workers.errors import DependencyUnavailable, StreamCrawlError
from workers.storage.pages import pg_errors

__all__ = ["SearchIndexer", "index_queued", "queued_count"]

log = logging.getLogger(__name__)


async def index_queued(conn: asyncpg.Connection | asyncpg.Pool, *, batch_rows: int) -> int:
    """Index up to ``batch_rows`` queued pages; returns how many queue rows were taken."""
    with pg_errors("search indexing"):
        return int(await conn.fetchval("SELECT page_search_index($1)", max(1, batch_rows)))


async def queued_count(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """Pages waiting for their search vector."""
    with pg_errors("search queue count"):
        return int(await conn.fetchval("SELECT count(*) FROM page_search_queue"))


class SearchIndexer:
    """One background task per PageStore; see the module doc."""

    def __init__(
        self,
        pool: Callable[[], asyncpg.Pool],
        *,
        batch_rows: int,
        max_delay_s: float,
        writing: Callable[[], bool],
    ) -> None:
        self._pool = pool
        self._batch_rows = max(1, batch_rows)
        self._max_delay_s = max(0.0, max_delay_s)
        self._writing = writing
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None
        self._again = False
        self.indexed = 0
        """Pages indexed since start."""
        self.busy_s = 0.0
        """Wall time spent in indexing statements since start."""

    async def _index(self) -> int:
        started = time.perf_counter()
        try:
            n = await index_queued(self._pool(), batch_rows=self._batch_rows)
        finally:
            self.busy_s += time.perf_counter() - started
        self.indexed += n
        return n

    def writes_started(self) -> None:
        self._idle.clear()

    def writes_finished(self) -> None:
        if not self._writing():
            self._idle.set()

    def wake(self) -> None:
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._again = False
        self._task = asyncio.get_running_loop().create_task(self._run(), name="search-indexer")

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._idle.wait(), self._max_delay_s)
            try:
                n = await self._index()
            except DependencyUnavailable as exc:  # the next write (or start) tries again
                log.warning("search indexing postponed: %s", exc)
                return
            except StreamCrawlError as exc:  # the queue keeps the pages; say so loudly
                log.error("search indexing failed: %s", exc)
                return
            if n < self._batch_rows:
                if not self._again:
                    return
                self._again = False

    async def drain(self) -> int:
        """Index every queued page now (waits for the background task first); returns the
        number this call indexed."""
        task = self._task
        if task is not None and not task.done():
            await asyncio.gather(task, return_exceptions=True)
        total = 0
        while True:
            n = await self._index()
            total += n
            if n < self._batch_rows:
                return total

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            # gather: the task's own cancellation is its result; a cancellation of close() is not swallowed
            await asyncio.gather(task, return_exceptions=True)
