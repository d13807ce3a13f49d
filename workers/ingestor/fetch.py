"""The Fetcher: one CrawlRequest in, one RawPage (or a readable error) out.

For each attempt, every hop of the redirect chain goes through the same gates:
circuit breaker → robots.txt → politeness slot → request (resolved and SSRF-checked by
the transports) → status. Redirects are followed by hand (at most ``max_redirects``) so
each new URL passes the gates again. Transient failures are retried in-process with
exponential backoff and full jitter (``retry_base_delay_s * 2**n``, capped at
``retry_max_delay_s``), or after the server's Retry-After when it is at most
``retry_after_cap_s``; a longer Retry-After ends the fetch at once with a
TransientFetchError carrying ``retry_after``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import random
import time
from dataclasses import dataclass, field
from types import TracebackType

import aiohttp
import httpx

from workers.errors import PermanentFetchError, TransientFetchError
from workers.ingestor.body import Body, read_page_body
from workers.ingestor.breaker import CircuitBreaker
from workers.ingestor.charset import detect_charset
from workers.ingestor.client import HttpClient
from workers.ingestor.failures import TLSFetchError, classify, status_error
from workers.ingestor.politeness import HostScheduler
from workers.ingestor.resolver import Resolver
from workers.ingestor.robots import ROBOTS_MAX_BYTES, RobotsCache
from workers.messages import CrawlRequest, RawPage, compress_html
from workers.settings import IngestorSettings

__all__ = ["KEPT_HEADERS", "Fetcher"]

KEPT_HEADERS = frozenset(
    {
        "cache-control",
        "content-language",
        "content-length",
        "content-type",
        "content-encoding",
        "date",
        "etag",
        "expires",
        "last-modified",
        "link",
        "server",
        "x-robots-tag",
    }
)
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Bodies at least this large are compressed and hashed on a worker thread (zstd and blake2b
# release the GIL): together they cost ~4x a whole aiohttp request in CPU for a 32 KB page,
# and a multi-MB page would stall every connection of the event loop for milliseconds.
# Below this size the thread hand-off costs more than it saves.
_OFFLOAD_BYTES = 16 * 1024
_DIGEST_THREADS = 2
_NO_BODY = httpx.ByteStream(b"")
_NETWORK_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError)


@dataclass(slots=True)
class _Hop:
    """The outcome of one request of a redirect chain."""

    status: int
    reason: str
    headers: dict[str, str]
    http_version: str
    location: str | None = None
    body: Body | None = None
    timings: dict[str, float] = field(default_factory=dict)


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
        )
        self.user_agent = f"{settings.user_agent} (+{settings.contact_url})"
        self.scheduler = HostScheduler(
            concurrency=settings.concurrency,
            per_host_concurrency=settings.per_host_concurrency,
            per_host_delay_s=settings.per_host_delay_s,
            max_delay_s=settings.crawl_delay_cap_s,
        )
        self.breaker = CircuitBreaker(failures=settings.breaker_failures, pause_s=settings.breaker_pause_s)
        self.robots = RobotsCache(
            self._fetch_robots,
            token=settings.user_agent.split("/", 1)[0].strip() or settings.user_agent,
            ttl_s=settings.robots_ttl_s,
            crawl_delay_cap_s=settings.crawl_delay_cap_s,
        )
        self._headers: list[tuple[bytes, bytes]] = [
            (b"User-Agent", self.user_agent.encode("ascii", "replace")),
            (b"Accept", b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"),
            (b"Accept-Encoding", b"gzip, deflate"),
        ]
        self._timeouts = {
            "connect": settings.connect_timeout_s,
            "read": settings.read_timeout_s,
            "write": settings.read_timeout_s,
            "pool": settings.total_timeout_s,
            "total": settings.total_timeout_s,
        }
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
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        digesters, self._digesters = self._digesters, None
        if digesters is not None:
            digesters.shutdown(wait=False)

    async def fetch(self, request: CrawlRequest) -> RawPage:
        """Fetch ``request.url``; see the package docstring for results and errors."""
        s = self.settings
        attempts = 1 + max(0, s.max_retries)
        for attempt in range(1, attempts + 1):
            try:
                return await self._attempt(request)
            except TransientFetchError as exc:
                after = exc.retry_after
                if after is not None and after > s.retry_after_cap_s:
                    raise TransientFetchError(
                        f"{exc}; retrying in {after:.0f}s is longer than the "
                        f"{s.retry_after_cap_s:g}s the ingestor waits in-process",
                        retry_after=after,
                    ) from exc
                if attempt == attempts:
                    tries = f"gave up after {attempts} attempt{'s' if attempts > 1 else ''}"
                    if isinstance(exc, TLSFetchError):
                        raise PermanentFetchError(f"{exc} ({tries})") from exc
                    raise TransientFetchError(f"{exc} ({tries})", retry_after=after) from exc
                if after is None:
                    cap = min(s.retry_max_delay_s, s.retry_base_delay_s * 2 ** (attempt - 1))
                    after = random.uniform(0.0, cap)  # full jitter
                await asyncio.sleep(after)
        raise AssertionError("unreachable")  # pragma: no cover

    async def _attempt(self, request: CrawlRequest) -> RawPage:
        url = request.url
        chain: list[str] = []
        budget = self.settings.total_timeout_s
        waited = network = 0.0
        for _ in range(self.settings.max_redirects + 1):
            hop, hop_wait, hop_time = await self._hop(url, budget, max_bytes=self.max_page_bytes)
            waited += hop_wait
            network += hop_time
            budget -= hop_time
            if hop.location is None:
                return await self._page(request, url, chain, hop, waited=waited, network=network)
            chain.append(url)
            url = hop.location
        chain.append(url)
        raise PermanentFetchError(
            f"too many redirects (more than {self.settings.max_redirects}): " + " -> ".join(chain)
        )

    async def _hop(self, url: str, budget: float, *, max_bytes: int) -> tuple[_Hop, float, float]:
        """One request through breaker, robots and politeness: (hop, waited s, network s)."""
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            raise PermanentFetchError(f"invalid URL {url!r}: {exc}") from exc
        if target.scheme not in ("http", "https") or not target.host:
            raise PermanentFetchError(f"not an http(s) URL: {url}")
        host = target.host
        self.breaker.check(host)
        rules = await self.robots.check(url)
        delay = max(self.scheduler.default_delay, rules.crawl_delay or 0.0)
        async with self.scheduler.slot(host, delay=delay) as waited:
            started = time.perf_counter()
            try:
                hop = await self._exchange(target, url, max(budget, 0.001), max_bytes=max_bytes)
            except TransientFetchError as exc:
                self.breaker.record_failure(host, str(exc))
                if exc.retry_after:
                    self.scheduler.defer(host, exc.retry_after)
                raise
            except PermanentFetchError as exc:
                if exc.status is not None:  # the host answered: it is alive
                    self.breaker.record_success(host)
                raise
            network = time.perf_counter() - started
        self.breaker.record_success(host)
        return hop, waited, network

    def _request(self, target: httpx.URL) -> httpx.Request:
        """A GET for ``target``. Built with an explicit empty stream, which skips httpx's body
        encoding and header preparation (a third of the cost): Host is set here instead."""
        return httpx.Request(
            "GET",
            target,
            headers=[*self._headers, (b"Host", target.netloc)],
            stream=_NO_BODY,
            extensions={"timeout": self._timeouts},
        )

    async def _exchange(self, target: httpx.URL, url: str, budget: float, *, max_bytes: int) -> _Hop:
        """Send one GET and read what we need of the response."""
        assert self._client is not None, "use `async with Fetcher(...)`"
        request = self._request(target)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                response = await self._client.send(request)
                try:
                    ttfb = time.perf_counter() - started
                    headers = _header_map(response)
                    hop = _Hop(
                        status=response.status_code,
                        reason=response.reason_phrase,
                        headers={k: v for k, v in headers.items() if k in KEPT_HEADERS},
                        http_version=response.http_version,
                        timings={"ttfb": ttfb * 1000},
                    )
                    location = headers.get("location")
                    if hop.status in _REDIRECTS and location:
                        hop.location = _redirect_target(target, location)
                    elif 200 <= hop.status < 300:
                        hop.body = await read_page_body(response, headers, max_bytes=max_bytes)
                        hop.timings["download"] = (time.perf_counter() - started - ttfb) * 1000
                    else:
                        raise status_error(
                            hop.status, hop.reason, url, retry_after=headers.get("retry-after")
                        )
                finally:
                    await response.aclose()
        except _NETWORK_ERRORS as exc:
            raise classify(exc, url, timeouts=self._timeouts) from exc
        return hop

    async def _page(
        self,
        request: CrawlRequest,
        final_url: str,
        chain: list[str],
        hop: _Hop,
        *,
        waited: float,
        network: float,
    ) -> RawPage:
        body = hop.body
        assert body is not None
        data = body.data
        if len(data) >= _OFFLOAD_BYTES:  # zstd and blake2b release the GIL: use another core
            loop = asyncio.get_running_loop()
            html_zstd, content_hash = await loop.run_in_executor(self._digesters, _digest, data)
        else:
            html_zstd, content_hash = _digest(data)
        timings = {"wait": waited * 1000, "total": network * 1000, **hop.timings}
        return RawPage(
            url=request.url,
            url_hash=request.url_hash,
            host=request.host,
            final_url=final_url,
            status=hop.status,
            content_type=body.content_type,
            html_zstd=html_zstd,
            content_hash=content_hash,
            fetched_at=time.time(),
            body_bytes=body.size,
            truncated=body.truncated,
            charset=None if body.skipped else detect_charset(data, body.header_charset),
            headers=hop.headers,
            timings=timings,
            redirects=chain,
            http_version=hop.http_version,
            skipped=body.skipped,
            batch=request.batch,
            rank=request.rank,
            kind=request.kind,
            ctx=request.ctx,
            request_id=request.request_id,
        )

    async def _fetch_robots(self, url: str) -> tuple[int, bytes]:
        """GET a robots.txt (redirects followed, SSRF-checked, polite): (status, body)."""
        budget = self.settings.total_timeout_s
        for _ in range(self.settings.max_redirects + 1):
            target = httpx.URL(url)
            self.breaker.check(target.host)
            async with self.scheduler.slot(target.host) as _waited:
                started = time.perf_counter()
                try:
                    hop = await self._robots_exchange(target, url, max(budget, 0.001))
                except TransientFetchError as exc:
                    self.breaker.record_failure(target.host, str(exc))
                    raise
                budget -= time.perf_counter() - started
            status, body, location = hop
            if location is None:
                return status, body
            url = location
        return status, b""  # too many redirects: a 3xx, which RobotsCache reads as "unavailable"

    async def _robots_exchange(
        self, target: httpx.URL, url: str, budget: float
    ) -> tuple[int, bytes, str | None]:
        assert self._client is not None, "use `async with Fetcher(...)`"
        request = self._request(target)
        try:
            async with asyncio.timeout(budget):
                response = await self._client.send(request)
                try:
                    status = response.status_code
                    location = response.headers.get("location")
                    if status in _REDIRECTS and location:
                        return status, b"", _redirect_target(target, location)
                    if not 200 <= status < 300:
                        return status, b"", None
                    chunks: list[bytes] = []
                    size = 0
                    async for chunk in response.aiter_bytes():
                        chunks.append(chunk)
                        size += len(chunk)
                        if size > ROBOTS_MAX_BYTES:
                            break
                    return status, b"".join(chunks), None
                finally:
                    await response.aclose()
        except _NETWORK_ERRORS as exc:
            raise classify(exc, url, timeouts=self._timeouts) from exc


def _digest(data: bytes) -> tuple[bytes, str]:
    """(zstd-compressed body, blake2b-128 hex of the body)."""
    return (compress_html(data) if data else b""), hashlib.blake2b(data, digest_size=16).hexdigest()


def _header_map(response: httpx.Response) -> dict[str, str]:
    """Response headers by lower-case name, repeated ones joined (one pass over the raw list)."""
    out: dict[str, str] = {}
    for raw_key, raw_value in response.headers.raw:
        key = raw_key.decode("latin-1").lower()
        try:
            value = raw_value.decode("utf-8")  # what servers send in practice (e.g. Location)
        except UnicodeDecodeError:
            value = raw_value.decode("latin-1")  # what RFC 9110 allows
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _redirect_target(base: httpx.URL, location: str) -> str:
    try:
        target = base.join(location.strip())
    except httpx.InvalidURL as exc:
        raise PermanentFetchError(f"invalid redirect Location {location!r} from {base}: {exc}") from exc
    if target.scheme not in ("http", "https"):
        raise PermanentFetchError(f"redirect from {base} to a non-http(s) URL: {location}")
    return str(target.copy_with(fragment=None))
