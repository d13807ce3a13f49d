"""The storage writer daemon: batched, idempotent writes, then ``storage.saved``."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from workers.lifecycle import Incoming, Worker
from workers.messages import ProcessedPage
from workers.settings import Settings
from workers.storage import PageStore
from workers.topics import STORAGE_SAVED, Stage

__all__ = ["StorageWriter"]

SAVED = Counter("storage_records_saved_total", "Pages written to PostgreSQL and S3")
WRITE_SECONDS = Histogram(
    "storage_write_seconds",
    "Time to write one batch: objects to S3, then the rows to PostgreSQL",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)


class StorageWriter(Worker):
    """Writes content objects, then the metadata rows in one UPSERT, then emits StoredPage.

    Offsets are committed only after the rows are written and every StoredPage is
    acknowledged; a redelivery overwrites the same row and the same object keys.
    """

    stage = Stage.STORAGE_WRITER
    batch_size = 200
    max_in_flight = 600

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.batch_size = settings.storage.batch_size
        self.max_in_flight = settings.storage.batch_size * 3
        self.store = PageStore(settings.postgres, settings.s3, settings.storage)

    async def on_start(self) -> None:
        await self.store.__aenter__()

    async def on_stop(self) -> None:
        await self.store.__aexit__(None, None, None)

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
        for result, source in zip(stored, sources, strict=True):
            await self.emit(STORAGE_SAVED, result, key=result.url_hash.encode(), source=source)
        SAVED.inc(len(stored))
