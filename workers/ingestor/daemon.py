"""The ingestor daemon: ``crawl.request`` → fetch → ``raw.page`` (pages) / ``raw.sitemap``
(robots.txt and sitemaps).

``crawl.request`` is keyed by host, so one consumer owns a host and politeness needs no
coordination between processes. Each record is handled on its own (batch size 1):

1. a request whose ``not_before`` lies ahead sleeps until then, holding no fetch place:
   up to ``max_waiting`` such requests wait beside the ``4 × concurrency`` being fetched,
   so a paused host's URLs never hold up the other hosts of the partition (nothing polls:
   one timer each; past ``max_waiting`` the consumer reads no more until one is due). A
   request due more than a minute (at most a third of ``stall_exit_s``) ahead is put back
   on ``crawl.request`` unchanged after that long, so no record stays in flight long
   enough for the lifecycle's liveness check to call the worker stalled. On shutdown a
   sleeping request is given up at once, uncommitted (it is redelivered), so it never
   holds the drain;
2. the fetcher returns a RawPage — fetched, skipped (robots, non-HTML, binary) or a 304 —
   which is produced to ``raw.page``, or to ``raw.sitemap`` for ``kind`` robots/sitemap;
3. a transient failure or an unreachable robots.txt re-queues the request (``requeues + 1``,
   ``not_before`` later: ``workers/ingestor/requeue.py``) instead of burning attempts back
   to back; after ``max_requeues`` it is dead-lettered. A paused host's request is re-queued
   for the end of the pause without spending a requeue (never dead-lettered for being paused);
4. a permanent failure (4xx, DNS name not found, SSRF refusal, TLS) is raised and
   dead-lettered by the lifecycle at once, with the reason.

The lifecycle commits a record only after what it produced (the page, or the re-queued
request) was acknowledged, so a crash re-fetches at most the requests in flight.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from prometheus_client import Counter, Gauge, Histogram

from workers.errors import TransientFetchError
from workers.ingestor.fetch import Fetcher
from workers.ingestor.requeue import next_try
from workers.lifecycle import Incoming, Worker
from workers.messages import CrawlRequest, RawPage, encode
from workers.settings import Settings
from workers.topics import CRAWL_REQUEST, RAW_PAGE, RAW_SITEMAP, Stage, Topic

__all__ = ["Ingestor"]

REQUESTS = Counter("ingestor_requests_total", "Crawl requests handled, by outcome", ["outcome"])
FETCH_SECONDS = Histogram(
    "ingestor_fetch_seconds",
    "Time from dequeue to RawPage, politeness waits and retries included",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
)
WAITING = Gauge("ingestor_waiting_requests", "Requests sleeping until their not_before time")
CONCURRENCY = Gauge("ingestor_concurrency_limit", "Requests allowed in flight now (adapted to loop lag)")
LOOP_LAG = Gauge("ingestor_loop_lag_seconds", "Worst event-loop lag of the last measurement period")


_MAX_HOLD_S = 60.0


class Ingestor(Worker):
    stage = Stage.INGESTOR
    batch_size = 1

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        s = settings.ingestor
        # More records being fetched than requests: a record waiting for its host's politeness
        # turn holds no request slot (the fetcher's global limit bounds requests), so a run of
        # one host's URLs must not fill the window and starve the other hosts. Records that
        # sleep until their not_before come on top and take none of these places.
        self._fetching = asyncio.Semaphore(s.concurrency * 4)
        self.max_in_flight = s.concurrency * 4 + max(0, s.max_waiting)
        self.fetcher = Fetcher(s, max_page_bytes=settings.worker.max_page_bytes)
        self.fetcher.governor.on_adjust = self._on_adjust
        self._leaving = asyncio.Event()
        # A record sleeping longer than this is re-queued unchanged instead: the lifecycle
        # judges a worker that finishes no record for stall_exit_s while records are in
        # flight as stalled, and a sleeping request is in flight.
        self._max_hold_s = max(1.0, min(_MAX_HOLD_S, settings.worker.stall_exit_s / 3))

    async def on_start(self) -> None:
        await self.fetcher.__aenter__()
        CONCURRENCY.set(self.fetcher.governor.limit.limit)

    async def on_stop(self) -> None:
        await self.fetcher.__aexit__(None, None, None)

    async def stop(self) -> None:
        self._leaving.set()
        await super().stop()

    @staticmethod
    def _on_adjust(limit: int, lag: float) -> None:
        CONCURRENCY.set(limit)
        LOOP_LAG.set(lag)

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            request = await self.decode_or_dead_letter(item, CrawlRequest)
            if request is None:
                REQUESTS.labels("malformed").inc()
                continue
            if not await self._wait_until(request.not_before):
                # Still not due after the longest hold: put the record back as it is, so no
                # record stays unfinished long enough to look like a stalled worker.
                REQUESTS.labels("held_back").inc()
                await self.emit_raw(
                    CRAWL_REQUEST,
                    item.record.value,
                    key=item.record.key or request.host.encode(),
                    trace_id=item.trace_id,
                    attempt=item.attempt,
                )
                continue
            async with self._fetching:
                await self._fetch(item, request)

    async def _wait_until(self, not_before: float) -> bool:
        """Sleep until ``not_before`` (epoch s), at most ``_max_hold_s``: is it due now?

        Cancelled at once by ``stop()``.
        """
        wait = not_before - time.time()
        if wait <= 0:
            return True
        WAITING.inc()
        try:
            async with asyncio.timeout(min(wait, self._max_hold_s)):
                await self._leaving.wait()
        except TimeoutError:
            return wait <= self._max_hold_s
        finally:
            WAITING.dec()
        # Shutting down: leave the record uncommitted; whoever owns the partition next has it.
        raise asyncio.CancelledError

    async def _fetch(self, item: Incoming, request: CrawlRequest) -> None:
        started = time.perf_counter()
        try:
            page = await self.fetcher.fetch(request)
        except TransientFetchError as exc:
            await self._requeue(item, request, exc)
            return
        except Exception:
            REQUESTS.labels("dead_lettered").inc()
            raise  # permanent: the lifecycle dead-letters it with the reason
        finally:
            FETCH_SECONDS.observe(time.perf_counter() - started)
        REQUESTS.labels("skipped" if page.skipped else "fetched").inc()
        await self.emit(_output(page), page, key=request.host.encode(), source=item)

    async def _requeue(self, item: Incoming, request: CrawlRequest, exc: TransientFetchError) -> None:
        """Put ``request`` back with a delay, or dead-letter it once its requeues are used up."""
        now = time.time()
        again = next_try(request, exc, self.settings.ingestor, now=now)
        if isinstance(again, TransientFetchError):
            REQUESTS.labels("dead_lettered").inc()
            await self.dead_letter(item, again, first_failure_at=now)
            return
        REQUESTS.labels("requeued").inc()
        await self.emit_raw(
            CRAWL_REQUEST,
            encode(again),
            key=item.record.key or request.host.encode(),
            trace_id=item.trace_id,
            attempt=item.attempt,
        )


def _output(page: RawPage) -> Topic:
    return RAW_SITEMAP if page.kind in ("robots", "sitemap") else RAW_PAGE
