"""The ingestor's HTTP client: httpx requests and responses over two transports.

``http://`` goes to :class:`~workers.ingestor.transport.AiohttpTransport` (HTTP/1.1,
aiohttp's pool). ``https://`` goes to httpx's own ``AsyncHTTPTransport`` with HTTP/2
negotiated by ALPN when ``IngestorSettings.http2`` is on (aiohttp cannot speak HTTP/2),
one small pool per origin (see :class:`_OriginPools`); with ``http2`` off HTTPS uses the
aiohttp transport too, which costs about half the CPU per page for HTTP/1.1 servers.
httpcore's connections are opened by :class:`GuardedNetworkBackend`, which resolves the
host with the shared :class:`~workers.ingestor.resolver.Resolver` (SSRF guard included)
and connects to the checked address, while TLS still verifies and sends SNI for the
host name.

This is what ``httpx.AsyncClient(mounts={...})`` would route, without the client's
per-request cookie persistence (one jar growing across every host crawled), its
redirect machinery (the fetcher follows redirects itself to check every hop) and the
CPU those cost: measured at ~450k instructions per request, more than a whole plain
aiohttp request (~365k).
"""

from __future__ import annotations

import asyncio
import functools
import ssl
import time
from collections.abc import Callable, Iterable
from pathlib import Path

import httpcore
import httpx

from workers.errors import BlockedError
from workers.ingestor.resolver import Resolver
from workers.ingestor.transport import AiohttpTransport

__all__ = ["GuardedNetworkBackend", "HttpClient", "make_ssl_context"]

_SWEEP_EVERY = 512
_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """httpcore network backend that resolves through the guarded resolver.

    ``connect_tcp`` receives the URL's host name; it resolves it (refusals raise
    BlockedError, which httpcore passes through untouched), then tries each checked
    address in turn. httpcore later calls ``start_tls`` on the stream with
    ``server_hostname`` set to the host name, so certificate checks and SNI are unchanged.
    """

    def __init__(self, resolver: Resolver, inner: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._resolver = resolver
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await self._resolver.resolve(host)
        last: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    ip, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None  # resolve() never returns an empty list
        raise last

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise BlockedError(f"unix sockets are not fetched: {path}")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _GuardedHTTPTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with its pool rebuilt around :class:`GuardedNetworkBackend`.

    ``AsyncHTTPTransport`` takes no ``network_backend`` argument, so the pool it builds
    is replaced by one with the same options plus the backend.
    """

    def __init__(
        self, *, resolver: Resolver, ssl_context: ssl.SSLContext, http2: bool, limits: httpx.Limits
    ) -> None:
        super().__init__(verify=ssl_context, http2=http2, limits=limits)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=True,
            http2=http2,
            network_backend=GuardedNetworkBackend(resolver),
        )


class _OriginPools(httpx.AsyncBaseTransport):
    """One small httpcore pool per origin instead of one big pool.

    httpcore's pool assigns queued requests to connections by scanning every connection
    (``is_idle``/``has_expired``, a socket poll each) on every change: quadratic in the
    number of connections. One shared pool of 150 TLS connections measured ~8-15 pages/s
    here; with a pool per origin each scan covers the host's few connections (politeness
    allows ``per_host_concurrency`` at a time, and HTTP/2 multiplexes them over one).
    Pools unused for ``idle_s`` are closed by a sweep every few hundred requests.
    """

    def __init__(
        self,
        *,
        resolver: Resolver,
        ssl_context: ssl.SSLContext,
        http2: bool,
        per_origin: int,
        idle_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._resolver = resolver
        self._ssl_context = ssl_context
        self._http2 = http2
        self._limits = httpx.Limits(
            max_connections=per_origin, max_keepalive_connections=per_origin, keepalive_expiry=15.0
        )
        self._idle_s = idle_s
        self._clock = clock
        self._pools: dict[tuple[str, str, int | None], tuple[_GuardedHTTPTransport, list[float]]] = {}
        self._closing: set[asyncio.Task[None]] = set()
        self._until_sweep = _SWEEP_EVERY

    @property
    def pools(self) -> int:
        return len(self._pools)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port)
        entry = self._pools.get(key)
        if entry is None:
            transport = _GuardedHTTPTransport(
                resolver=self._resolver, ssl_context=self._ssl_context, http2=self._http2, limits=self._limits
            )
            entry = self._pools[key] = (transport, [0.0])
        entry[1][0] = self._clock()
        self._until_sweep -= 1
        if self._until_sweep <= 0:
            self._sweep()
        return await entry[0].handle_async_request(request)

    def _sweep(self) -> None:
        self._until_sweep = _SWEEP_EVERY
        stale = self._clock() - self._idle_s  # no fetch outlives total_timeout_s: nobody uses these
        for key in [k for k, (_, used) in self._pools.items() if used[0] < stale]:
            transport, _ = self._pools.pop(key)
            task = asyncio.ensure_future(transport.aclose())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)

    async def aclose(self) -> None:
        pools, self._pools = self._pools, {}
        for transport, _ in pools.values():
            await transport.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)


@functools.lru_cache(maxsize=8)
def make_ssl_context(ca_bundle: Path | None = None, *, role: str = "http1") -> ssl.SSLContext:
    """A verifying client context: the given CA bundle, else certifi's (as httpx does).

    Cached per (bundle, role): loading a CA bundle costs tens of milliseconds. ``role``
    keeps httpcore's context (it sets ALPN on it) apart from aiohttp's.
    """
    return httpx.create_ssl_context(verify=str(ca_bundle) if ca_bundle else True)


class HttpClient:
    """Route httpx requests to the transport for their scheme (see module docstring)."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        max_connections: int,
        per_origin: int,
        idle_s: float,
        http2: bool = True,
        ca_bundle: Path | None = None,
    ) -> None:
        # Separate TLS contexts: httpcore sets ALPN (h2) on the context it is given, and an
        # aiohttp connection that negotiated h2 would then speak HTTP/1.1 to an h2 server.
        plain = AiohttpTransport(
            resolver=resolver, max_connections=max_connections, ssl_context=make_ssl_context(ca_bundle)
        )
        self._http: httpx.AsyncBaseTransport = plain
        self._https: httpx.AsyncBaseTransport = plain
        self._transports: list[httpx.AsyncBaseTransport] = [plain]
        if http2:
            self._https = _OriginPools(
                resolver=resolver,
                ssl_context=make_ssl_context(ca_bundle, role="httpcore"),
                http2=True,
                per_origin=per_origin,
                idle_s=idle_s,
            )
            self._transports.append(self._https)

    async def send(self, request: httpx.Request) -> httpx.Response:
        """Send ``request``; the response body is not read (stream it, then ``aclose()``)."""
        scheme = request.url.scheme
        if scheme == "http":
            return await self._http.handle_async_request(request)
        if scheme == "https":
            return await self._https.handle_async_request(request)
        raise httpx.UnsupportedProtocol(f"not an http(s) URL: {request.url}", request=request)

    async def aclose(self) -> None:
        for transport in self._transports:
            await transport.aclose()
