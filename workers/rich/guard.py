"""The one guard every request of a rendered page goes through, with the ingestor's rules.

Chromium fetches nothing itself: ``intercept.py`` hands each request a page makes
(scripts, stylesheets, XHR/fetch, iframes and their documents, workers' requests,
prefetches, beacons) to :meth:`RequestGuard.fetch`, which either fetches it with the
ingestor's machinery or refuses it. In order, for every hop of a redirect chain:

=====================================================  ============  ==============
check                                                  refusal       ingestor part
=====================================================  ============  ==============
resource type not in ``blocked_resource_types``        ``type``
method GET, HEAD or POST                               ``method``
at most ``max_requests_per_page`` requests per page    ``requests``
http(s) URL                                            ``scheme``
SSRF: every address of the host passes the guard       ``ssrf``      ``Resolver``
name resolves                                          ``dns``       ``Resolver``
robots.txt allows the URL for our token                ``robots``    ``RobotsCache``
the host's politeness turn within ``request_wait_cap_s``  ``politeness``  ``HostScheduler``
the response arrives before the page deadline          ``timeout``
at most ``max_resource_bytes_per_page`` bytes          ``bytes``
at most ``max_redirects`` redirects                    ``redirects``
a network failure                                      ``error``     ``classify``
=====================================================  ============  ==============

The connection goes to the address the guard checked: requests go out through the
ingestor's :class:`~workers.ingestor.client.HttpClient`, whose transports resolve
through the same :class:`~workers.ingestor.resolver.Resolver` (overrides,
``allowed_networks``, DNS cache) and connect to the checked IP. Every request carries
our User-Agent and no cookies. Redirects are followed here, each hop checked again:
a redirect handed to Chromium would be followed by Chromium itself, outside the guard
(measured: its next hop never reached the interception).

**robots.txt applies to sub-resources.** RFC 9309 covers what a crawler fetches
automatically, and a page's scripts are that. Google's renderer honours robots.txt for
them too (its guidance to site owners is *not* to disallow CSS and JS it needs), so a
site owner can keep our browser off an API path as they keep our fetcher off a page.
Unreachable robots.txt means disallow, as in the ingestor. Crawl-delay raises the
host's spacing.

**Politeness is per renderer process.** The renderer is a separate process from the
ingestor, so its :class:`~workers.ingestor.politeness.HostScheduler` spaces and bounds
only the browser's requests (``per_host_concurrency``, ``per_host_delay_s``, Crawl-delay);
a host sees the ingestor's page fetches plus the renderer's sub-resource fetches.
A request that cannot get its turn within ``request_wait_cap_s`` is refused rather
than holding the page past its deadline.

**Cache.** Responses a site's pages share (its scripts and styles) are kept in a
bounded :class:`~workers.rich.cache.ResourceCache` for ``cache_ttl_s``: a crawl must not
download a bundle once per page. A cached response still counts against the page's
request and byte caps. Chromium's own cache stays on (the interception is the DevTools
``Fetch`` domain, not Playwright's routing, which turns it off): what Chromium reuses
from it, by the response's own caching headers, it does not request again, so the guard
neither sees nor counts it; it came through the guard when it was first fetched.

A refusal is never fatal to the page: Chromium sees a blocked request, as with an ad
blocker, and the page renders with what it got. Refusals are counted by reason in
``renderer_requests_total`` and in the page's :class:`PageBudget`; SSRF refusals are
also logged one line each, the rest at debug level.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
import httpx

from workers.errors import BlockedError, StreamCrawlError
from workers.ingestor.client import HttpClient
from workers.ingestor.failures import classify
from workers.ingestor.politeness import HostScheduler
from workers.ingestor.resolver import Resolver
from workers.ingestor.robots import ROBOTS_MAX_BYTES, RobotsCache
from workers.rich import metrics
from workers.rich.cache import ResourceCache
from workers.rich.document import fulfil_headers
from workers.settings import IngestorSettings, RendererSettings

__all__ = ["ALLOWED_METHODS", "Fetched", "PageBudget", "Refusal", "RequestGuard", "Sender", "SubRequest"]

log = logging.getLogger(__name__)

ALLOWED_METHODS = frozenset({"GET", "HEAD", "POST"})
"""What a page may send: reads, and POST (GraphQL and search APIs render content with it)."""
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NETWORK_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError)
_LOUD = frozenset({"ssrf"})  # worth a line each; the rest are counted (and logged at debug)
_NOT_FORWARDED = frozenset(
    {
        "host",
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "cookie",
        "cookie2",
        "user-agent",
        "accept-encoding",
        "content-length",
    }
)


class Sender(Protocol):
    """What the guard sends requests with (``HttpClient``; unit tests pass a fake)."""

    async def send(self, request: httpx.Request) -> httpx.Response: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True, slots=True)
class SubRequest:
    """A request a page made, as the interception saw it."""

    method: str
    url: str
    resource_type: str
    headers: Mapping[str, str]
    body: bytes | None = None


@dataclass(frozen=True, slots=True)
class Fetched:
    """A response to hand to Chromium."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    """The URL that answered (after redirects)."""


@dataclass(frozen=True, slots=True)
class Refusal:
    reason: str
    detail: str


@dataclass(frozen=True, slots=True)
class _Redirect:
    location: str
    status: int


class PageBudget:
    """What one page may still load, and what it was refused."""

    __slots__ = ("bytes_left", "deadline", "fetched", "refused", "requests_left")

    def __init__(self, *, requests: int, nbytes: int, deadline: float) -> None:
        self.requests_left = requests
        self.bytes_left = nbytes
        self.deadline = deadline
        """``time.monotonic()`` after which nothing more is fetched for the page."""
        self.fetched = 0
        self.refused: collections.Counter[str] = collections.Counter()


class RequestGuard:
    """Fetch or refuse the requests of rendered pages (see the module docstring)."""

    def __init__(
        self,
        settings: RendererSettings,
        ingestor: IngestorSettings,
        *,
        resolver: Resolver | None = None,
        client: Sender | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings
        self.user_agent = ingestor.user_agent_header
        self.resolver = resolver or Resolver(
            overrides=ingestor.resolve_overrides,
            allow_private_networks=ingestor.allow_private_networks,
            allowed_networks=ingestor.allowed_networks,
        )
        concurrency = max(16, settings.concurrency * settings.per_host_concurrency * 2)
        self._client: Sender = client or HttpClient(
            resolver=self.resolver,
            max_connections=concurrency,
            per_origin=settings.per_host_concurrency,
            idle_s=15.0 + ingestor.total_timeout_s,
            http2=ingestor.http2,
            ca_bundle=ingestor.ca_bundle,
        )
        self.scheduler = HostScheduler(
            concurrency=concurrency,
            per_host_concurrency=settings.per_host_concurrency,
            per_host_delay_s=settings.per_host_delay_s,
            max_delay_s=ingestor.crawl_delay_cap_s,
        )
        self.robots = RobotsCache(
            self._fetch_robots,
            token=ingestor.robots_token,
            ttl_s=ingestor.robots_ttl_s,
            crawl_delay_cap_s=ingestor.crawl_delay_cap_s,
        )
        self.cache = ResourceCache(max_bytes=settings.cache_mb * 2**20, ttl_s=settings.cache_ttl_s)
        self._blocked = frozenset(t.lower() for t in settings.blocked_resource_types)
        self._max_redirects = ingestor.max_redirects
        self._timeouts = {
            "connect": ingestor.connect_timeout_s,
            "read": ingestor.read_timeout_s,
            "write": ingestor.read_timeout_s,
            "pool": ingestor.total_timeout_s,
            "total": ingestor.total_timeout_s,
        }
        self._clock = clock

    def budget(self, *, timeout_s: float) -> PageBudget:
        """A fresh budget for one page that must be done within ``timeout_s``."""
        return PageBudget(
            requests=self.settings.max_requests_per_page,
            nbytes=self.settings.max_resource_bytes_per_page,
            deadline=self._clock() + timeout_s,
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    def refuse(self, budget: PageBudget | None, reason: str, detail: str, url: str) -> Refusal:
        """Count and log a refusal (also used by the interception for navigations and websockets)."""
        metrics.REQUESTS.labels(reason).inc()
        if budget is not None:
            budget.refused[reason] += 1
        log.log(
            logging.INFO if reason in _LOUD else logging.DEBUG,
            "guard refused %s (%s): %s",
            url[:300],
            reason,
            detail,
        )
        return Refusal(reason, detail)

    async def fetch(self, request: SubRequest, budget: PageBudget) -> Fetched | Refusal:
        """Fetch ``request`` for a page under ``budget``, or say why not."""
        url = request.url
        kind = request.resource_type.lower()
        if kind in self._blocked:
            return self.refuse(budget, "type", f"{kind} requests are not loaded", url)
        method = request.method.upper()
        if method not in ALLOWED_METHODS:
            return self.refuse(budget, "method", f"{method} requests are not sent", url)
        if budget.requests_left <= 0:
            cap = self.settings.max_requests_per_page
            return self.refuse(budget, "requests", f"the page made more than {cap} requests", url)
        budget.requests_left -= 1
        cached = self.cache.get(url) if method == "GET" else None
        if cached is not None:
            if len(cached.body) > budget.bytes_left:
                cap = self.settings.max_resource_bytes_per_page
                return self.refuse(budget, "bytes", f"the page loaded more than {cap} bytes", url)
            budget.bytes_left -= len(cached.body)
            budget.fetched += 1
            metrics.REQUESTS.labels("cached").inc()
            return cached
        headers = self._outgoing(request.headers)
        body = request.body if method == "POST" else None
        for _ in range(self._max_redirects + 1):
            outcome = await self._hop(method, url, headers, body, budget)
            if not isinstance(outcome, _Redirect):
                if isinstance(outcome, Fetched):
                    budget.fetched += 1
                    metrics.REQUESTS.labels("fetched").inc()
                    metrics.REQUEST_BYTES.inc(len(outcome.body))
                    self.cache.put(request.url, method, outcome)
                return outcome
            if outcome.status == 303 or (outcome.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = [(k, v) for k, v in headers if k.lower() != "content-type"]
            url = outcome.location
        return self.refuse(budget, "redirects", f"more than {self._max_redirects} redirects", request.url)

    def _outgoing(self, headers: Mapping[str, str]) -> list[tuple[str, str]]:
        out = [
            (name, value)
            for name, value in headers.items()
            if name.lower() not in _NOT_FORWARDED and not name.lower().startswith("sec-ch-")
        ]
        out += [("User-Agent", self.user_agent), ("Accept-Encoding", "gzip, deflate")]
        return out

    async def _hop(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, budget: PageBudget
    ) -> Fetched | Refusal | _Redirect:
        try:
            target = httpx.URL(url)
        except httpx.InvalidURL as exc:
            return self.refuse(budget, "scheme", f"invalid URL: {exc}", url)
        if target.scheme not in ("http", "https") or not target.host:
            return self.refuse(budget, "scheme", f"not an http(s) URL: {target.scheme}:", url)
        host = target.host
        try:
            async with asyncio.timeout(max(0.001, budget.deadline - self._clock())):
                # First: a refused address gets no robots.txt request either.
                await self.resolver.resolve(host)
        except BlockedError as exc:
            return self.refuse(budget, "ssrf", str(exc), url)
        except StreamCrawlError as exc:
            return self.refuse(budget, "dns", str(exc), url)
        except TimeoutError:
            return self.refuse(budget, "dns", f"{host} not resolved before the page's deadline", url)
        try:
            async with asyncio.timeout(max(0.001, budget.deadline - self._clock())):
                rules = await self.robots.check(url)
        except StreamCrawlError as exc:  # disallowed, or unreachable (RFC 9309: disallow)
            return self.refuse(budget, "robots", str(exc), url)
        except TimeoutError:
            return self.refuse(budget, "robots", "robots.txt not read before the page's deadline", url)
        left = budget.deadline - self._clock()
        if left <= 0:
            return self.refuse(budget, "timeout", "the page's deadline passed", url)
        request = httpx.Request(
            method, target, headers=headers, content=body, extensions={"timeout": self._timeouts}
        )
        delay = max(self.scheduler.default_delay, rules.crawl_delay or 0.0)
        loop = asyncio.get_running_loop()
        waiting = True
        try:
            async with asyncio.timeout(min(self.settings.request_wait_cap_s, left)) as timer:
                async with self.scheduler.slot(host, delay=delay):
                    waiting = False
                    timer.reschedule(loop.time() + max(0.001, budget.deadline - self._clock()))
                    return await self._exchange(request, url, budget)
        except TimeoutError:
            if waiting:
                wait = min(self.settings.request_wait_cap_s, left)
                return self.refuse(budget, "politeness", f"no turn for {host} within {wait:.1f}s", url)
            return self.refuse(budget, "timeout", "no response before the page's deadline", url)

    async def _exchange(
        self, request: httpx.Request, url: str, budget: PageBudget
    ) -> Fetched | Refusal | _Redirect:
        try:
            response = await self._client.send(request)
            try:
                status = response.status_code
                location = response.headers.get("location")
                if status in _REDIRECTS and location:
                    return _Redirect(str(request.url.join(location.strip()).copy_with(fragment=None)), status)
                chunks: list[bytes] = []
                size = 0
                if request.method != "HEAD":
                    async for chunk in response.aiter_bytes():
                        size += len(chunk)
                        if size > budget.bytes_left:
                            cap = self.settings.max_resource_bytes_per_page
                            return self.refuse(budget, "bytes", f"the page loaded more than {cap} bytes", url)
                        chunks.append(chunk)
                budget.bytes_left -= size
                headers = fulfil_headers(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw
                )
                return Fetched(status=status, headers=headers, body=b"".join(chunks), url=url)
            finally:
                await response.aclose()
        except BlockedError as exc:  # the transport's own check of the address it connects to
            return self.refuse(budget, "ssrf", str(exc), url)
        except (StreamCrawlError, httpx.InvalidURL) as exc:
            return self.refuse(budget, "error", str(exc), url)
        except _NETWORK_ERRORS as exc:
            return self.refuse(budget, "error", str(classify(exc, url, timeouts=self._timeouts)), url)

    async def _fetch_robots(self, url: str) -> tuple[int, bytes]:
        """GET a robots.txt (redirects followed, every hop through the resolver and politeness)."""
        status = 0
        for _ in range(self._max_redirects + 1):
            target = httpx.URL(url)
            if target.scheme not in ("http", "https"):
                return 404, b""  # a redirect off the web: unavailable, no restrictions
            await self.resolver.resolve(target.host)
            headers = [("User-Agent", self.user_agent), ("Accept-Encoding", "gzip, deflate")]
            request = httpx.Request("GET", target, headers=headers, extensions={"timeout": self._timeouts})
            async with self.scheduler.slot(target.host):
                try:
                    async with asyncio.timeout(self._timeouts["total"]):
                        response = await self._client.send(request)
                        try:
                            status = response.status_code
                            location = response.headers.get("location")
                            if status in _REDIRECTS and location:
                                url = str(target.join(location.strip()).copy_with(fragment=None))
                                continue
                            if not 200 <= status < 300:
                                return status, b""
                            chunks: list[bytes] = []
                            size = 0
                            async for chunk in response.aiter_bytes():
                                chunks.append(chunk)
                                size += len(chunk)
                                if size > ROBOTS_MAX_BYTES:
                                    break
                            return status, b"".join(chunks)
                        finally:
                            await response.aclose()
                except _NETWORK_ERRORS as exc:
                    raise classify(exc, url, timeouts=self._timeouts) from exc
        return status, b""  # too many redirects: a 3xx, which RobotsCache reads as "unavailable"
