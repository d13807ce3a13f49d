"""The ingestor daemon: ``crawl.request`` → fetch → ``raw.page``.

``crawl.request`` is keyed by host, so one consumer owns a host and politeness needs no
coordination between processes. Each record is handled on its own (batch size 1) with up
to ``STREAMCRAWL_INGESTOR_CONCURRENCY`` in flight; the fetcher retries transient failures
itself, so what reaches the lifecycle is final: a RawPage, or a dead letter with the reason.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

from prometheus_client import Counter, Histogram

from workers.errors import TransientFetchError
from workers.ingestor.fetch import Fetcher
from workers.lifecycle import Incoming, Worker
from workers.messages import CrawlRequest
from workers.settings import Settings
from workers.topics import RAW_PAGE, Stage

__all__ = ["Ingestor"]

REQUESTS = Counter("ingestor_requests_total", "Crawl requests handled, by outcome", ["outcome"])
FETCH_SECONDS = Histogram(
    "ingestor_fetch_seconds",
    "Time from dequeue to RawPage, politeness waits and retries included",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)


class Ingestor(Worker):
    stage = Stage.INGESTOR
    batch_size = 1

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # More records in flight than requests: a record waiting for its host's politeness
        # turn holds no request slot (the fetcher's global semaphore bounds requests), so a
        # run of one host's URLs must not fill the window and starve the other hosts.
        self.max_in_flight = settings.ingestor.concurrency * 4
        self.fetcher = Fetcher(settings.ingestor, max_page_bytes=settings.worker.max_page_bytes)

    async def on_start(self) -> None:
        await self.fetcher.__aenter__()

    async def on_stop(self) -> None:
        await self.fetcher.__aexit__(None, None, None)

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            request = await self.decode_or_dead_letter(item, CrawlRequest)
            if request is None:
                REQUESTS.labels("malformed").inc()
                continue
            started = time.perf_counter()
            try:
                page = await self.fetcher.fetch(request)
            except TransientFetchError as exc:
                # The fetcher already retried with backoff: this failure is final for now.
                REQUESTS.labels("dead_lettered").inc()
                await self.dead_letter(item, exc, first_failure_at=time.time())
                continue
            except Exception:
                REQUESTS.labels("dead_lettered").inc()
                raise
            finally:
                FETCH_SECONDS.observe(time.perf_counter() - started)
            REQUESTS.labels("skipped" if page.skipped else "fetched").inc()
            await self.emit(RAW_PAGE, page, key=request.host.encode(), source=item)
