"""The storage writer daemon: batched writes, then ``storage.saved``; collects garbage."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from workers.errors import StreamCrawlError
from workers.lifecycle import Incoming, Worker
from workers.messages import ProcessedPage
from workers.settings import Settings
from workers.storage import PageStore
from workers.topics import STORAGE_SAVED, Stage

__all__ = ["StorageWriter"]

log = logging.getLogger(__name__)

SAVED = Counter("storage_records_saved_total", "Pages written to PostgreSQL and S3")
WRITE_SECONDS = Histogram(
    "storage_write_seconds",
    "Time to write one batch: objects to S3, then the rows to PostgreSQL",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
OUTCOMES = Counter("storage_outcomes_total", "StoredPage outcomes emitted, by outcome", ["outcome"])
COLLECTED = Counter("storage_objects_collected_total", "Unreferenced content objects deleted")


class StorageWriter(Worker):
    """Writes WARC objects, then the metadata rows in one UPSERT, then emits one StoredPage
    per record (``stored``, ``unchanged`` or ``skipped`` with its reason; the discovery stage
    reads the outlinks from it).

    Offsets are committed only after the rows are written and every StoredPage is
    acknowledged; a redelivery finds its rows and writes nothing. Every
    ``STREAMCRAWL_STORAGE_GC_INTERVAL_S`` one writer process (an advisory lock picks it)
    deletes content objects no row references that are older than the grace period.
    """

    stage = Stage.STORAGE_WRITER
    batch_size = 200
    max_in_flight = 600

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.batch_size = settings.storage.batch_size
        self.max_in_flight = settings.storage.batch_size * 3
        self.store = PageStore(settings.postgres, settings.s3, settings.storage)
        self._gc_task: asyncio.Task[None] | None = None

    async def on_start(self) -> None:
        await self.store.__aenter__()
        if self.settings.storage.gc_interval_s > 0:
            self._gc_task = asyncio.create_task(
                self._collect_periodically(self.settings.storage.gc_interval_s)
            )

    async def on_stop(self) -> None:
        task, self._gc_task = self._gc_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.__aexit__(None, None, None)

    async def _collect_periodically(self, interval_s: float) -> None:
        while True:
            # Jittered, so writers started together do not all list the bucket at once.
            await asyncio.sleep(interval_s * random.uniform(0.5, 1.0))
            try:
                deleted = await self.store.collect_garbage()
            except StreamCrawlError as exc:
                log.warning("garbage collection failed, will retry: %s", exc)
                continue
            except Exception:  # a collector bug must not stop the writer
                log.exception("garbage collection failed, will retry")
                continue
            if deleted:
                COLLECTED.inc(len(deleted))

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        pages: list[ProcessedPage] = []
        sources: list[Incoming] = []
        for item in batch:
            page = await self.decode_or_dead_letter(item, ProcessedPage)
            if page is not None:
                pages.append(page)
                sources.append(item)
        if not pages:
            return
        with WRITE_SECONDS.time():
            stored = await self.store.save_batch(pages)
        partition = await self.batch_partition(STORAGE_SAVED)  # one broker batch per write batch
        for result, source in zip(stored, sources, strict=True):
            await self.emit(
                STORAGE_SAVED, result, key=result.url_hash.encode(), source=source, partition=partition
            )
            OUTCOMES.labels(result.outcome).inc()
        SAVED.inc(sum(1 for s in stored if s.outcome == "stored"))
