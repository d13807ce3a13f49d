"""The fast extractor daemon."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from workers.fast_extractor.processing import process_routed
from workers.lifecycle import Incoming, Worker
from workers.messages import RoutedPage
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
    """CPU-bound: one batch at a time per process; scale with processes (supervisord numprocs)."""

    stage = Stage.FAST_EXTRACTOR
    batch_size = 20
    max_in_flight = 40

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            routed = await self.decode_or_dead_letter(item, RoutedPage)
            if routed is None:
                continue
            with PROCESS_SECONDS.labels("fast").time():
                processed = process_routed(routed, route="fast")
            PAGES_PROCESSED.labels("fast").inc()
            await self.emit(PROCESSED_FINAL, processed, key=processed.host.encode(), source=item)
            await asyncio.sleep(0)  # let heartbeats and acks through between pages
