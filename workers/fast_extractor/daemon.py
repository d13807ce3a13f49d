"""The fast extractor daemon: ``process.fast`` → extraction processes → ``processed.final``.

The daemon does the Kafka work; pages are extracted in its ExtractionPool (see pool.py),
off the event loop, each within ``extractor.page_deadline_s``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from workers.errors import ExtractionError, MessageDecodeError
from workers.fast_extractor.pool import Extracted, ExtractionPool
from workers.lifecycle import Incoming, Worker
from workers.settings import Settings
from workers.topics import PROCESSED_FINAL, Stage

__all__ = ["PAGES_PROCESSED", "PROCESS_SECONDS", "FastExtractor"]

PAGES_PROCESSED = Counter(
    "processor_pages_processed_total", "Pages turned into ProcessedPage, by route", ["route"]
)
PROCESS_SECONDS = Histogram(
    "processor_page_seconds",
    "Extraction time per page",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5, 20),
)


class FastExtractor(Worker):
    """CPU-bound: ``extractor.processes`` extraction processes per daemon; scale with daemons."""

    stage = Stage.FAST_EXTRACTOR
    batch_size = 20
    max_in_flight = 40

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.pool = ExtractionPool(
            processes=settings.extractor.processes,
            deadline_s=settings.extractor.page_deadline_s,
            wall_deadline_s=settings.extractor.page_wall_deadline_s,
        )

    async def on_start(self) -> None:
        await self.pool.start()

    async def on_stop(self) -> None:
        await self.pool.close()

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        done: list[tuple[Incoming, Extracted]] = []
        for item in batch:
            started = time.perf_counter()
            try:
                out = await self.pool.extract(item.record.value or b"")
            except (MessageDecodeError, ExtractionError) as exc:
                # Permanent: dead-letter this record now rather than failing (and so
                # re-extracting) the rest of the batch.
                await self.dead_letter(item, exc, first_failure_at=time.time())
                continue
            PROCESS_SECONDS.labels("fast").observe(time.perf_counter() - started)
            PAGES_PROCESSED.labels("fast").inc()
            done.append((item, out))
        # Sent together, to one partition: one produce batch for the handled batch, where a
        # send per page (pages finish ~6 ms apart, the producer lingers 20 ms) spread over
        # the partitions by key made ~3 records per broker batch (see batch_partition).
        partition = await self.batch_partition(PROCESSED_FINAL)
        for item, out in done:
            await self.emit_raw(
                PROCESSED_FINAL,
                out.value,
                key=out.key,
                trace_id=item.trace_id,
                attempt=1,
                partition=partition,
            )
