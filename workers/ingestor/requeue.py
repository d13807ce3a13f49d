"""When to try a request again: delays for re-queued requests, and when to give up.

A transient failure (timeout, connection error, 5xx, 429, a DNS server failure), a host
paused by its circuit breaker and an unreachable robots.txt all put the request back on
``crawl.request`` with ``requeues + 1`` and a ``not_before`` time, instead of retrying at
once: the record's offset is committed, the count survives a crash, and the request waits
(without a fetch slot) in whichever process consumes it next.

* a transient failure waits ``requeue_base_delay_s * 2**requeues`` (capped at
  ``requeue_max_delay_s``), jittered over the upper half so that requests failing together
  spread out while the delay still grows; a server's Retry-After is a floor;
* a paused host's request waits for the end of the pause (plus up to a tenth of it, so the
  host's requests do not all return in the same instant) **without spending its own
  requeues**: it is never dead-lettered for being paused. Only when the host's breaker has
  tripped more than ``max_requeues`` times in a row (the host kept failing through every
  half-open try, pauses doubling, see ``breaker.py``) are its waiting requests given up,
  naming the host's failures;
* after ``max_requeues`` of its own failures the request is dead-lettered as a plain
  :class:`~workers.errors.TransientFetchError` naming the last failure: retryable, so the
  DLQ replay tries it again later.
"""

from __future__ import annotations

import dataclasses
import random

from workers.errors import TransientFetchError
from workers.ingestor.failures import HostPaused
from workers.messages import CrawlRequest
from workers.settings import IngestorSettings

__all__ = ["give_up_error", "next_try", "requeue_delay", "requeued"]


def next_try(
    request: CrawlRequest, exc: TransientFetchError, settings: IngestorSettings, *, now: float
) -> CrawlRequest | TransientFetchError:
    """The request to put back after ``exc``, or the error to dead-letter it with."""
    limit = settings.max_requeues
    if isinstance(exc, HostPaused):
        if exc.trips > limit:
            return TransientFetchError(
                f"gave up after the host's circuit breaker tripped {exc.trips} times in a row: {exc}",
                retry_after=exc.retry_after,
            )
        return requeued(request, delay=requeue_delay(request, exc, settings), now=now, count=False)
    if request.requeues >= limit:
        return give_up_error(request, exc)
    return requeued(request, delay=requeue_delay(request, exc, settings), now=now)


def requeue_delay(request: CrawlRequest, exc: TransientFetchError, settings: IngestorSettings) -> float:
    """Seconds ``request`` waits before its next try after ``exc``."""
    cap = settings.requeue_max_delay_s
    if isinstance(exc, HostPaused):
        pause = min(cap, exc.retry_after or settings.breaker_pause_s)
        return pause + random.uniform(0.0, pause / 10)
    ceiling = min(cap, settings.requeue_base_delay_s * 2**request.requeues)
    delay = random.uniform(ceiling / 2, ceiling)
    if exc.retry_after is not None:
        delay = max(delay, min(cap, exc.retry_after))
    return delay


def requeued(request: CrawlRequest, *, delay: float, now: float, count: bool = True) -> CrawlRequest:
    """The request to put back, not before ``now + delay``; one more requeue if ``count``."""
    return dataclasses.replace(request, not_before=now + delay, requeues=request.requeues + int(count))


def give_up_error(request: CrawlRequest, exc: TransientFetchError) -> TransientFetchError:
    """What a request that used up its requeues is dead-lettered with."""
    tries = request.requeues + 1
    return TransientFetchError(
        f"gave up after {tries} tries ({request.requeues} requeues): {exc}", retry_after=exc.retry_after
    )
