"""The Fetcher: one CrawlRequest in, one RawPage (or a readable error) out.

Every hop of a redirect chain goes through the same gates, in this order:
circuit breaker (HostPaused) → robots.txt (a disallow ends the fetch as a skipped page)
→ DNS + SSRF guard (the resolver, before the request deadline starts, so a DNS failure is
reported as one) → politeness slot (per host, per IP, then the load-governed global
limit) → the request (:class:`~workers.ingestor.exchange.Exchanger`) → status.
Redirects are followed by hand (at most ``max_redirects``), each target canonicalised,
so each new URL passes the gates again. ``kind="robots"`` requests read the host's
robots.txt through the RobotsCache, ``kind="sitemap"`` ones read a sitemap under its own
size cap and content types (see ``workers/ingestor/__init__.py``).

Transient failures may be retried in-process (``max_retries``, default 0: the daemon
re-queues them with a delay instead), with exponential backoff and full jitter or the
server's Retry-After when it is at most ``retry_after_cap_s``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import time
from collections.abc import Mapping, Sequence
from types import TracebackType

import httpx

from workers.errors import PermanentFetchError, TransientFetchError
from workers.ingestor.body import Body, read_capped, read_page_body, read_sitemap_body
from workers.ingestor.breaker import CircuitBreaker
from workers.ingestor.client import HttpClient
from workers.ingestor.exchange import KEPT_HEADERS, BodyReader, Exchanger, Hop
from workers.ingestor.failures import FetchTimeout, TLSFetchError, reworded
from workers.ingestor.load import LoadGovernor
from workers.ingestor.politeness import HostScheduler
from workers.ingestor.raw import Fetched, build_page, skipped_page
from workers.ingestor.resolver import Resolver
from workers.ingestor.robots import ROBOTS_MAX_BYTES, RobotsCache, RobotsDisallowed, robots_url
from workers.messages import CrawlRequest, RawPage
from workers.settings import IngestorSettings
from workers.topics import MAX_MESSAGE_BYTES

__all__ = ["KEPT_HEADERS", "Fetcher"]

_DIGEST_THREADS = 2
# Room for the rest of a RawPage next to its body in one Kafka record.
_RECORD_HEADROOM = 256 * 1024
Conditional = Sequence[tuple[bytes, bytes]]


class _Disallowed(Exception):
    """robots.txt disallowed ``url`` (reached through ``chain``)."""

    def __init__(self, url: str, chain: list[str]) -> None:
        super().__init__(url)
        self.url = url
        self.chain = chain


class Fetcher:
    """Fetch pages politely and safely; see the package docstring for the contract."""

    def __init__(
        self,
        settings: IngestorSettings,
        *,
        max_page_bytes: int,
        resolver: Resolver | None = None,
    ) -> None:
        self.settings = settings
        self.max_page_bytes = max_page_bytes
        self.resolver = resolver or Resolver(
            overrides=settings.resolve_overrides,
            allow_private_networks=settings.allow_private_networks,
            allowed_networks=settings.allowed_networks,
            dns_timeout_s=settings.dns_timeout_s,
            nameservers=settings.dns_servers,
        )
        self.user_agent = settings.user_agent_header
        self.governor = LoadGovernor(
            maximum=settings.concurrency,
            minimum=min(settings.concurrency, 10),
            target_lag_s=settings.max_loop_lag_s,
        )
        self.scheduler = HostScheduler(
            concurrency=settings.concurrency,
            per_host_concurrency=settings.per_host_concurrency,
            per_host_delay_s=settings.per_host_delay_s,
            per_ip_concurrency=settings.per_ip_concurrency,
            per_ip_delay_s=settings.per_ip_delay_s,
            max_delay_s=settings.crawl_delay_cap_s,
            global_limit=self.governor.limit,
        )
        self.breaker = CircuitBreaker(
            failures=settings.breaker_failures,
            pause_s=settings.breaker_pause_s,
            max_pause_s=settings.breaker_max_pause_s,
        )
        self.robots = RobotsCache(
            self._fetch_robots,
            token=settings.robots_token,
            ttl_s=settings.robots_ttl_s,
            crawl_delay_cap_s=settings.crawl_delay_cap_s,
        )
        self.exchanger = Exchanger(
            user_agent=self.user_agent,
            timeouts={
                "connect": settings.connect_timeout_s,
                "read": settings.read_timeout_s,
                "write": settings.read_timeout_s,
                "pool": settings.total_timeout_s,
                "total": settings.total_timeout_s,
            },
        )
        self._client: HttpClient | None = None
        self._digesters: concurrent.futures.ThreadPoolExecutor | None = None

    async def __aenter__(self) -> Fetcher:
        self._digesters = concurrent.futures.ThreadPoolExecutor(
            max_workers=_DIGEST_THREADS, thread_name_prefix="ingestor-digest"
        )
        self._client = HttpClient(
            resolver=self.resolver,
            max_connections=self.settings.concurrency + 50,  # robots fetches run beside pages
            per_origin=self.settings.per_host_concurrency,
            idle_s=15.0 + self.settings.total_timeout_s,
            http2=self.settings.http2,
            ca_bundle=self.settings.ca_bundle,
        )
        self.governor.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every connection; idempotent."""
        self.governor.stop()
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        await self.resolver.aclose()
        digesters, self._digesters = self._digesters, None
        if digesters is not None:
            digesters.shutdown(wait=False)

    # -------------------------------------------------------------- requests
    async def fetch(self, request: CrawlRequest) -> RawPage:
        """Fetch ``request``; see the package docstring for results and errors."""
        s = self.settings
        attempts = 1 + max(0, s.max_retries)
        for attempt in range(1, attempts + 1):
            try:
                if request.kind == "robots":
                    return await self._robots_page(request)
                return await self._attempt(request)
            except TransientFetchError as exc:
                if attempt == attempts:
                    if attempts == 1:
                        raise
                    tries = f"gave up after {attempts} attempts"
                    if isinstance(exc, TLSFetchError):
                        raise PermanentFetchError(f"{exc} ({tries})") from exc
                    raise reworded(exc, f"{exc} ({tries})", retry_after=exc.retry_after) from exc
                after = exc.retry_after
                if after is not None and after > s.retry_after_cap_s:
                    raise reworded(
                        exc,
                        f"{exc}; retrying in {after:.0f}s is longer than the "
                        f"{s.retry_after_cap_s:g}s the ingestor waits in-process",
                        retry_after=after,
                    ) from exc
                if after is None:
                    cap = min(s.retry_max_delay_s, s.retry_base_delay_s * 2 ** (attempt - 1))
                    after = random.uniform(0.0, cap)  # full jitter
                await asyncio.sleep(after)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: CrawlRequest) -> RawPage:
        sitemap = request.kind == "sitemap"
        conditional: list[tuple[bytes, bytes]] = []
        if request.etag:
            conditional.append((b"If-None-Match", request.etag.encode("latin-1", "replace")))
        if request.last_modified:
            conditional.append((b"If-Modified-Since", request.last_modified.encode("latin-1", "replace")))
        read = self._read_sitemap if sitemap else self._read_page
        try:
            fetched = await self._follow(request.url, read, conditional=conditional)
        except _Disallowed as stop:
            return skipped_page(request, stop.url, stop.chain, "robots")
        page = await build_page(request, fetched, digesters=self._digesters, charset=not sitemap)
        if len(page.html_zstd) > MAX_MESSAGE_BYTES - _RECORD_HEADROOM:
            raise PermanentFetchError(
                f"{request.url}: body of {page.body_bytes} bytes is {len(page.html_zstd)} bytes "
                f"compressed, more than a Kafka record may hold ({MAX_MESSAGE_BYTES} bytes)"
            )
        return page

    async def _read_page(self, response: httpx.Response, headers: Mapping[str, str]) -> Body:
        return await read_page_body(response, headers, max_bytes=self.max_page_bytes)

    async def _read_sitemap(self, response: httpx.Response, headers: Mapping[str, str]) -> Body:
        return await read_sitemap_body(response, headers, max_bytes=self.settings.sitemap_max_bytes)

    async def _follow(
        self, url: str, read: BodyReader, *, conditional: Conditional = (), robots: bool = False
    ) -> Fetched:
        """Follow ``url``'s redirects through the gates; the final hop.

        ``robots``: a robots.txt fetch — no breaker and no robots.txt of its own, and too
        many redirects end with the last 3xx (which RobotsCache reads as "unavailable").
        """
        chain: list[str] = []
        budget = self.settings.total_timeout_s
        waited = network = 0.0
        for _ in range(self.settings.max_redirects + 1):
            target = _target(url)
            crawl_delay = 0.0
            if not robots:
                self.breaker.check(target.host)
                try:
                    crawl_delay = (await self.robots.check(url)).crawl_delay or 0.0
                except RobotsDisallowed as exc:
                    raise _Disallowed(url, chain) from exc
            hop, hop_wait, hop_time = await self._send(
                target, url, budget, read, conditional, crawl_delay=crawl_delay, robots=robots
            )
            waited += hop_wait
            network += hop_time
            budget -= hop_time
            if hop.location is None:
                return Fetched(hop, url, chain, waited, network)
            if robots and len(chain) == self.settings.max_redirects:
                return Fetched(hop, url, chain, waited, network)
            chain.append(url)
            url = hop.location
        chain.append(url)
        raise PermanentFetchError(
            f"too many redirects (more than {self.settings.max_redirects}): " + " -> ".join(chain)
        )

    async def _send(
        self,
        target: httpx.URL,
        url: str,
        budget: float,
        read: BodyReader,
        conditional: Conditional,
        *,
        crawl_delay: float = 0.0,
        robots: bool = False,
    ) -> tuple[Hop, float, float]:
        """One request: DNS, politeness slot, exchange; (hop, waited s, network s).

        Page failures feed the host's circuit breaker; robots.txt fetches (``robots``) never do.
        """
        assert self._client is not None, "use `async with Fetcher(...)`"
        host = target.host
        try:
            addresses = await self.resolver.resolve(host)
        except TransientFetchError as exc:
            if not robots:
                self.breaker.record_failure(host, str(exc))
            raise
        scheduler = self.scheduler
        async with scheduler.slot(
            host,
            delay=max(scheduler.default_delay, crawl_delay),
            ip=addresses[0],
            ip_delay=max(scheduler.default_ip_delay, crawl_delay),
        ) as waited:
            if not robots:
                self.breaker.check(host)  # it may have tripped while we waited for the turn
            loop_started = asyncio.get_running_loop().time()
            started = time.perf_counter()
            try:
                hop = await self.exchanger.get(
                    self._client,
                    target,
                    url,
                    max(budget, 0.001),
                    read_body=read,
                    conditional=conditional,
                    raise_status=not robots,
                )
            except TransientFetchError as exc:
                # A timeout while our own event loop lagged is our fault, not the host's.
                ours = isinstance(exc, FetchTimeout) and self.governor.overloaded_since(loop_started)
                if not robots and not ours:
                    self.breaker.record_failure(host, str(exc))
                if exc.retry_after:
                    scheduler.defer(host, exc.retry_after)
                raise
            except PermanentFetchError as exc:
                if exc.status is not None and not robots:  # the host answered: it is alive
                    self.breaker.record_success(host)
                raise
            network = time.perf_counter() - started
        if not robots:
            self.breaker.record_success(host)
        return hop, waited, network

    # ------------------------------------------------------------ robots.txt
    async def _robots_page(self, request: CrawlRequest) -> RawPage:
        """``kind="robots"``: the origin's robots.txt itself, read through the RobotsCache."""
        url = robots_url(request.url)
        self.breaker.check(_target(url).host)
        rules, answer = await self.robots.refresh(url)
        if answer is None:  # unreachable: RFC 9309 says disallow for now; the daemon re-queues
            raise rules.unreachable_error(now=self.robots.clock())
        assert isinstance(answer, Fetched)
        return await build_page(request, answer, digesters=self._digesters, charset=False)

    async def _read_robots(self, response: httpx.Response, headers: Mapping[str, str]) -> Body:
        return await read_capped(response, headers, max_bytes=ROBOTS_MAX_BYTES)

    async def _fetch_robots(self, url: str) -> Fetched:
        """GET a robots.txt (redirects followed, SSRF-checked, polite): the final hop.

        Not subject to robots.txt itself, and never counted by the circuit breaker.
        """
        return await self._follow(url, self._read_robots, robots=True)


def _target(url: str) -> httpx.URL:
    try:
        target = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise PermanentFetchError(f"invalid URL {url!r}: {exc}") from exc
    if target.scheme not in ("http", "https") or not target.host:
        raise PermanentFetchError(f"not an http(s) URL: {url}")
    return target
