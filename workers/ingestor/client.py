"""The ingestor's HTTP client: httpx requests and responses over two transports.

``http://`` goes to :class:`~workers.ingestor.transport.AiohttpTransport` (HTTP/1.1,
aiohttp's pool). ``https://`` goes to httpx's own ``AsyncHTTPTransport`` with HTTP/2
negotiated by ALPN when ``IngestorSettings.http2`` is on (aiohttp cannot speak HTTP/2);
with ``http2`` off HTTPS uses the aiohttp transport too, which is faster for HTTP/1.1.
httpcore's connections are opened by :class:`GuardedNetworkBackend`, which resolves the
host with the shared :class:`~workers.ingestor.resolver.Resolver` (SSRF guard included)
and connects to the checked address, while TLS still verifies and sends SNI for the
host name.

This is what ``httpx.AsyncClient(mounts={...})`` would route, without the client's
per-request cookie persistence (one jar growing across every host crawled), its
redirect machinery (the fetcher follows redirects itself to check every hop) and the
CPU those cost per request (measured in bench/stage_ingestor.py's notes).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Iterable
from pathlib import Path

import httpcore
import httpx

from workers.errors import BlockedError
from workers.ingestor.resolver import Resolver
from workers.ingestor.transport import AiohttpTransport

__all__ = ["GuardedNetworkBackend", "HttpClient", "make_ssl_context"]

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
            self._https = _GuardedHTTPTransport(
                resolver=resolver,
                ssl_context=make_ssl_context(ca_bundle, role="httpcore"),
                http2=True,
                limits=httpx.Limits(
                    max_connections=max_connections,
                    max_keepalive_connections=min(max_connections, 200),
                    keepalive_expiry=15.0,
                ),
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
