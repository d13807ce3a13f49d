"""robots.txt: fetched once per origin, cached, parsed by Protego.

An origin is ``scheme://host:port`` (RFC 9309 scopes robots.txt to exactly that). The
first request for an origin fetches ``/robots.txt`` (redirects followed, body capped at
512 KiB, the RFC's minimum); concurrent requests for the same origin wait for that one
fetch. Results are cached for ``ttl_s`` in a bounded LRU table.

What a fetch result means (RFC 9309 section 2.3.1):

- 2xx: parse it; ``Disallow``/``Allow`` are matched for our product token (the
  User-Agent up to its first ``/``, e.g. ``StreamCrawl``); ``Crawl-delay`` (or
  ``Request-rate``) is honoured up to ``crawl_delay_cap_s``;
- 4xx other than 429 ("unavailable"): no restrictions, crawl everything;
- 429, 5xx, connection failure or timeout ("unreachable"): the RFC says assume complete
  disallow. We do, *temporarily*: for ``unreachable_ttl_s`` every URL of the origin fails
  with a :class:`~workers.errors.TransientFetchError` whose ``retry_after`` is the time
  left, so the daemon re-queues the page with ``not_before`` at that time instead of
  crawling a site whose rules it could not read. The robots.txt is fetched again after
  that. A robots.txt failure never counts against the host's circuit breaker: the pages
  were not tried.

A disallowed URL raises :class:`RobotsDisallowed` (a BlockedError); the fetcher turns it
into a skipped page (``RawPage.skipped="robots"``), not a dead letter.
:meth:`RobotsCache.refresh` fetches an origin's robots.txt now and returns the response
itself too, for ``kind="robots"`` requests (discovery reads its ``Sitemap:`` lines).

DNS failures (permanent or transient), TLS failures and SSRF refusals are not cached here: they propagate as the
page's error (the page would fail the same way; the resolver caches DNS failures).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from protego import Protego

from workers.errors import BlockedError, TransientFetchError
from workers.ingestor.failures import DNSFailure, TLSFetchError

__all__ = [
    "ROBOTS_MAX_BYTES",
    "RobotsAnswer",
    "RobotsCache",
    "RobotsDisallowed",
    "RobotsFetch",
    "RobotsRules",
    "origin_of",
    "robots_url",
]

ROBOTS_MAX_BYTES = 512 * 1024


class RobotsAnswer(Protocol):
    """What a robots.txt fetch returns: the final status and body (at most ROBOTS_MAX_BYTES)."""

    @property
    def status(self) -> int: ...

    @property
    def body(self) -> bytes: ...


@dataclass(frozen=True, slots=True)
class _StatusBody:
    status: int
    body: bytes


RobotsFetch = Callable[[str], Awaitable[RobotsAnswer | tuple[int, bytes]]]
"""Fetch a robots.txt URL (redirects followed): the answer, or ``(final status, body)``;
raises StreamCrawl errors."""


class RobotsDisallowed(BlockedError):
    """robots.txt disallows the URL for our product token."""


_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """``scheme://host:port`` of an http(s) URL, the scope of one robots.txt."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme, 0)
    if ":" in host:
        host = f"[{host}]"
    return f"{scheme}://{host}:{port}"


def robots_url(url: str) -> str:
    """The robots.txt URL that governs ``url`` (default ports left out)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port and parts.port != _DEFAULT_PORTS.get(scheme) else ""
    return f"{scheme}://{host}{port}/robots.txt"


@dataclass(slots=True, frozen=True)
class RobotsRules:
    """What one origin's robots.txt allows."""

    origin: str
    parser: Protego | None = None
    """None: no restrictions (no robots.txt, or a 4xx)."""
    unreachable: str | None = None
    """Why the robots.txt could not be read; set means disallow everything for now."""
    retry_at: float = 0.0
    crawl_delay: float | None = None
    """Seconds between requests asked for by the site (already capped), if any."""

    def unreachable_error(self, *, now: float) -> TransientFetchError:
        """The error for a URL of an origin whose robots.txt is unreachable (``retry_after`` set)."""
        left = max(0.0, self.retry_at - now)
        return TransientFetchError(
            f"robots.txt of {self.origin} is unreachable ({self.unreachable}); "
            f"RFC 9309: disallowing the site until it can be read (next try in {left:.0f}s)",
            retry_after=left,
        )

    def check(self, url: str, *, token: str, now: float) -> None:
        """Raise RobotsDisallowed if ``url`` is disallowed, TransientFetchError if unreachable."""
        if self.unreachable is not None:
            raise self.unreachable_error(now=now)
        if self.parser is not None and not self.parser.can_fetch(url, token):
            parts = urlsplit(url)
            path = parts.path + (f"?{parts.query}" if parts.query else "")
            raise RobotsDisallowed(f"robots.txt of {self.origin} disallows {path or '/'} for {token}")


class RobotsCache:
    """Per-origin robots.txt rules with a TTL (see the module docstring)."""

    def __init__(
        self,
        fetch: RobotsFetch,
        *,
        token: str,
        ttl_s: float,
        crawl_delay_cap_s: float,
        unreachable_ttl_s: float = 60.0,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetch = fetch
        self.token = token
        self._ttl = ttl_s
        self._cap = crawl_delay_cap_s
        self._unreachable_ttl = min(unreachable_ttl_s, ttl_s)
        self._max_entries = max_entries
        self.clock = clock
        self._cache: OrderedDict[str, tuple[float, RobotsRules]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[tuple[RobotsRules, RobotsAnswer | None]]] = {}
        self._origins: dict[str, str] = {}

    def __len__(self) -> int:
        return len(self._cache)

    async def check(self, url: str) -> RobotsRules:
        """The rules for ``url``'s origin, after checking ``url`` against them."""
        origin = self._origin(url)
        rules = self._cached(origin) or await self._shared_load(origin)
        rules.check(url, token=self.token, now=self.clock())
        return rules

    async def rules_for(self, url: str) -> RobotsRules:
        origin = self._origin(url)
        return self._cached(origin) or await self._shared_load(origin)

    async def refresh(self, url: str) -> tuple[RobotsRules, RobotsAnswer | None]:
        """Fetch the robots.txt of ``url``'s origin now (or join a fetch in flight), cache its
        rules, and return them with the response (None when it was unreachable)."""
        origin = self._origin(url)
        task = self._pending.get(origin)
        if task is None:
            self._cache.pop(origin, None)
            task = self._start_load(origin)
        return await asyncio.shield(task)

    def _origin(self, url: str) -> str:
        """origin_of(url), memoised by the URL's ``scheme://netloc`` prefix (hot path)."""
        end = url.find("/", url.find("//") + 2)
        prefix = url if end < 0 else url[:end]
        origin = self._origins.get(prefix)
        if origin is None:
            if len(self._origins) >= self._max_entries:
                self._origins.clear()
            origin = self._origins[prefix] = origin_of(url)
        return origin

    def _cached(self, origin: str) -> RobotsRules | None:
        entry = self._cache.get(origin)
        if entry is None:
            return None
        if entry[0] > self.clock():
            self._cache.move_to_end(origin)
            return entry[1]
        del self._cache[origin]
        return None

    async def _shared_load(self, origin: str) -> RobotsRules:
        task = self._pending.get(origin) or self._start_load(origin)
        rules, _answer = await asyncio.shield(task)
        return rules

    def _start_load(self, origin: str) -> asyncio.Future[tuple[RobotsRules, RobotsAnswer | None]]:
        # A task of its own: a cancelled first requester must not cancel the others.
        task = asyncio.ensure_future(self._load(origin))
        self._pending[origin] = task
        task.add_done_callback(lambda done: self._settled(origin, done))
        return task

    def _settled(self, origin: str, task: asyncio.Future[tuple[RobotsRules, RobotsAnswer | None]]) -> None:
        if self._pending.get(origin) is task:
            del self._pending[origin]
        if not task.cancelled():
            task.exception()  # mark retrieved: every waiter may have gone

    async def _load(self, origin: str) -> tuple[RobotsRules, RobotsAnswer | None]:
        try:
            fetched = await self._fetch(f"{origin}/robots.txt")
        except (TLSFetchError, DNSFailure):
            raise  # the page would fail the same way: report the TLS or DNS failure itself
        except TransientFetchError as exc:
            return self._remember_unreachable(origin, str(exc)), None
        answer = _StatusBody(*fetched) if isinstance(fetched, tuple) else fetched
        status = answer.status
        if 200 <= status < 300:
            text = answer.body[:ROBOTS_MAX_BYTES].decode("utf-8", "replace")
            parser = Protego.parse(text)
            rules = RobotsRules(origin=origin, parser=parser, crawl_delay=self._delay(parser))
        elif status == 429 or status >= 500:
            return self._remember_unreachable(origin, f"HTTP {status}"), None
        else:  # 4xx "unavailable" (and redirect loops): no restrictions
            rules = RobotsRules(origin=origin)
        self._remember(origin, rules, self._ttl)
        return rules, answer

    def _remember_unreachable(self, origin: str, reason: str) -> RobotsRules:
        retry_at = self.clock() + self._unreachable_ttl
        rules = RobotsRules(origin=origin, unreachable=reason, retry_at=retry_at)
        self._remember(origin, rules, self._unreachable_ttl)
        return rules

    def _delay(self, parser: Protego) -> float | None:
        delays: list[float] = []
        crawl_delay = parser.crawl_delay(self.token)
        if crawl_delay is not None:
            delays.append(float(crawl_delay))
        rate = parser.request_rate(self.token)
        if rate is not None and rate.requests > 0:
            delays.append(rate.seconds / rate.requests)
        if not delays:
            return None
        return max(0.0, min(self._cap, max(delays)))

    def _remember(self, origin: str, rules: RobotsRules, ttl: float) -> None:
        self._cache[origin] = (self.clock() + ttl, rules)
        self._cache.move_to_end(origin)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)
