"""An httpx transport over an aiohttp ``ClientSession``: httpx's API, aiohttp's speed.

httpx's own connection pool (httpcore) tops out near 190 requests/s on this machine
(see the shared environment notes); aiohttp's C-accelerated HTTP/1.1 client does far
more. ``httpx_aiohttp.AiohttpTransport`` exists and was measured (bench notes in the
commit history): it costs about as much CPU per request as this one, but it reads the body
through a fixed 16 KiB ``iter_chunked`` loop, reports a reset or dropped connection as
``ConnectTimeout`` and keeps aiohttp's cookie jar. This one is a few dozen lines that do
what the ingestor needs:

- streams the body with ``iter_any`` (whatever the socket delivered, no re-chunking),
  so the caller can stop at its size cap and ``aclose()`` drops the connection instead
  of draining an unwanted body;
- no cookies (``DummyCookieJar``: a crawler must not carry state across millions of hosts),
  no automatic decompression (httpx's ``Response`` decodes, as with every httpx transport),
  no redirects (the fetcher follows them itself, checking each hop);
- resolves every new connection through :class:`~workers.ingestor.resolver.Resolver`
  (SSRF guard included; aiohttp's own DNS cache is off) and guard-checks IP literals,
  which aiohttp would otherwise connect to without asking the resolver;
- reports the address it connected to in the response's ``peer_ip`` extension (WARC's
  ``WARC-IP-Address``; see :func:`peer_ip`);
- maps aiohttp's exceptions onto httpx's (timeouts to ``ConnectTimeout``/``ReadTimeout``,
  connection failures to ``ConnectError``, broken responses to ``ReadError`` /
  ``RemoteProtocolError``), chaining the original so TLS failures stay recognisable.

HTTP/1.1 only: aiohttp does not speak HTTP/2 (see ``client.py`` for how HTTPS is routed).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator
from typing import NoReturn

import aiohttp
import httpx
from yarl import URL

from workers.errors import StreamCrawlError
from workers.ingestor.resolver import AiohttpResolver, Resolver

__all__ = ["AiohttpTransport", "peer_ip"]


def peer_ip(response: aiohttp.ClientResponse) -> str | None:
    """The IP address ``response`` came from.

    aiohttp hands the connection back to its pool as soon as the whole body has arrived,
    which for small pages happens before ``request()`` returns: ``response.connection``
    is None then. The response still holds the connection's protocol (there is no public
    accessor for it): ``tests/integration/test_fetch.py::test_response_as_received``
    checks both paths, so an aiohttp change that breaks this fails a test, not silently.
    """
    connection = response.connection
    transport = connection.transport if connection is not None else None
    if transport is None:
        protocol = getattr(response, "_protocol", None)
        transport = getattr(protocol, "transport", None)
    peer = transport.get_extra_info("peername") if transport is not None else None
    return str(peer[0]) if peer else None


def _raise_mapped(exc: BaseException, request: httpx.Request) -> NoReturn:
    """Re-raise an aiohttp / asyncio failure as the matching httpx exception."""
    message = str(exc) or type(exc).__name__
    mapped: httpx.TransportError
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        mapped = httpx.ConnectTimeout(message, request=request)
    elif isinstance(exc, aiohttp.ServerTimeoutError | asyncio.TimeoutError):
        mapped = httpx.ReadTimeout(message, request=request)
    elif isinstance(exc, aiohttp.ClientConnectorError):
        mapped = httpx.ConnectError(message, request=request)
    elif isinstance(exc, aiohttp.InvalidURL | aiohttp.NonHttpUrlClientError):
        mapped = httpx.UnsupportedProtocol(message, request=request)
    elif isinstance(exc, aiohttp.ClientResponseError):  # unparsable status line or headers
        mapped = httpx.RemoteProtocolError(message, request=request)
    elif isinstance(exc, aiohttp.ClientError | OSError):
        mapped = httpx.ReadError(message, request=request)
    else:
        raise exc
    raise mapped from exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, response: aiohttp.ClientResponse, request: httpx.Request) -> None:
        self._response = response
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            _raise_mapped(exc, self._request)

    async def aclose(self) -> None:
        if self._response.content.at_eof():
            self._response.release()  # keep-alive: the connection goes back to the pool
        else:
            self._response.close()  # unread body: drop the connection, never drain it


class AiohttpTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 transport for httpx backed by one aiohttp session (see module docstring)."""

    def __init__(
        self,
        *,
        resolver: Resolver,
        max_connections: int,
        ssl_context: ssl.SSLContext | None = None,
        keepalive_s: float = 15.0,
    ) -> None:
        self._resolver = resolver
        self._max_connections = max_connections
        self._ssl_context = ssl_context
        self._keepalive_s = keepalive_s
        self._session: aiohttp.ClientSession | None = None
        self._timeouts: dict[tuple[float | None, ...], aiohttp.ClientTimeout] = {}

    def _open(self) -> aiohttp.ClientSession:
        # Created lazily: aiohttp binds the session to the running event loop.
        connector = aiohttp.TCPConnector(
            limit=self._max_connections,
            limit_per_host=0,  # per-host limits are the politeness scheduler's job
            resolver=AiohttpResolver(self._resolver),
            use_dns_cache=False,  # every new connection goes through the guard
            ssl=self._ssl_context if self._ssl_context is not None else True,
            keepalive_timeout=self._keepalive_s,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
            trust_env=False,
            max_line_size=16_384,
            max_field_size=32_768,
        )
        return self._session

    def _timeout(self, timeouts: dict[str, float | None]) -> aiohttp.ClientTimeout:
        key = (timeouts.get("pool"), timeouts.get("connect"), timeouts.get("read"))
        timeout = self._timeouts.get(key)
        if timeout is None:  # one object per distinct setting, not one per request
            timeout = self._timeouts[key] = aiohttp.ClientTimeout(
                total=None, connect=key[0], sock_connect=key[1], sock_read=key[2]
            )
        return timeout

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._session or self._open()
        url = request.url
        host = url.host
        if host[:1].isdigit() or ":" in host:  # aiohttp skips the resolver for IP literals
            self._resolver.check_literal(host)
        try:
            response = await session.request(
                request.method,
                URL(str(url), encoded=True),
                headers=request.headers.multi_items(),
                data=None if request.method in ("GET", "HEAD") else request.content,
                allow_redirects=False,
                timeout=self._timeout(request.extensions.get("timeout", {})),
                server_hostname=request.extensions.get("sni_hostname"),
            )
        except StreamCrawlError:
            raise  # resolver refusal or DNS failure, already a readable reason
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            _raise_mapped(exc, request)
        version = response.version
        extensions = {
            "http_version": f"HTTP/{version.major}.{version.minor}".encode() if version else b"HTTP/1.1",
            "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            "peer_ip": peer_ip(response),
        }
        return httpx.Response(
            response.status,
            headers=response.raw_headers,
            stream=_Body(response, request),
            request=request,
            extensions=extensions,
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
