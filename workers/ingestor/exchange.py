"""One GET and what came back, as received: the unit the fetcher's redirect loop is made of.

:meth:`Exchanger.get` sends one request through the :class:`~workers.ingestor.client.HttpClient`
(resolution and the SSRF guard happen in its transports) within a deadline and returns a
:class:`Hop`: status line, every response header in order (for WARC), the request headers
sent, the peer address, the kept header subset, a redirect target or the body read by the
caller's reader. Redirect targets are canonicalised with :func:`workers.urls.canonicalize`
(the URL fetched next, and a page's ``final_url``, are canonical); a target that is not a
valid http(s) URL is a PermanentFetchError with the reason.

The request is built with an explicit empty stream, which skips httpx's body encoding
and header preparation (a third of the cost of building it): Host is set here instead.
Conditional headers (``If-None-Match`` / ``If-Modified-Since``) are added when the
request carries validators; a ``304`` to them is a hop without a body.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field

import aiohttp
import httpx

from workers.errors import PermanentFetchError
from workers.ingestor.body import Body
from workers.ingestor.client import HttpClient
from workers.ingestor.failures import classify, status_error
from workers.urls import InvalidURL, canonicalize

__all__ = ["KEPT_HEADERS", "REDIRECTS", "BodyReader", "Exchanger", "Hop", "header_pairs"]

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
REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NO_BODY = httpx.ByteStream(b"")
_NETWORK_ERRORS = (httpx.HTTPError, aiohttp.ClientError, OSError, TimeoutError)
RawHeaders = list[tuple[bytes, bytes]]
BodyReader = Callable[[httpx.Response, Mapping[str, str]], Awaitable[Body]]
"""Reads a 2xx body: (response, lower-case header map) -> Body."""


@dataclass(slots=True)
class Hop:
    """The outcome of one request of a redirect chain."""

    status: int
    reason: str
    headers: dict[str, str]
    """The kept subset (KEPT_HEADERS), lower-case names, repeated ones joined."""
    http_version: str
    response_headers: list[list[str]] = field(default_factory=list)
    """Every response header as received, in order, ``[name, value]``."""
    request_headers: list[list[str]] = field(default_factory=list)
    """What this hop sent, ``[name, value]``."""
    peer_ip: str | None = None
    location: str | None = None
    """The canonical redirect target, for a 3xx with a Location."""
    body: Body | None = None
    timings: dict[str, float] = field(default_factory=dict)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")  # what servers send in practice (e.g. Location)
    except UnicodeDecodeError:
        return raw.decode("latin-1")  # what RFC 9110 allows


def header_pairs(raw: Sequence[tuple[bytes, bytes]]) -> list[list[str]]:
    """``[[name, value], …]`` as on the wire (names keep their case)."""
    return [[_text(name), _text(value)] for name, value in raw]


def _read_headers(raw: RawHeaders) -> tuple[dict[str, str], list[list[str]]]:
    """One pass over the raw list: headers by lower-case name (repeated ones joined), and
    every header as received."""
    by_name: dict[str, str] = {}
    received: list[list[str]] = []
    for raw_key, raw_value in raw:
        name = raw_key.decode("latin-1")
        value = _text(raw_value)
        received.append([name, value])
        key = name.lower()
        by_name[key] = f"{by_name[key]}, {value}" if key in by_name else value
    return by_name, received


def _redirect_target(base: httpx.URL, location: str) -> str:
    try:
        target = base.join(location.strip())
    except httpx.InvalidURL as exc:
        raise PermanentFetchError(f"invalid redirect Location {location!r} from {base}: {exc}") from exc
    if target.scheme not in ("http", "https"):
        raise PermanentFetchError(f"redirect from {base} to a non-http(s) URL: {location}")
    try:
        return canonicalize(str(target))
    except InvalidURL as exc:
        raise PermanentFetchError(f"redirect from {base} to an invalid URL {location!r}: {exc}") from exc


def _peer(response: httpx.Response) -> str | None:
    """The address the response came from: our aiohttp transport reports it, httpcore's
    network stream knows it."""
    extensions = response.extensions
    peer = extensions.get("peer_ip")
    if peer is not None:
        return str(peer)
    stream = extensions.get("network_stream")
    address = stream.get_extra_info("server_addr") if stream is not None else None
    return str(address[0]) if address else None


class Exchanger:
    """Builds our GETs and runs them (see the module docstring)."""

    def __init__(self, *, user_agent: str, timeouts: dict[str, float]) -> None:
        self.headers: RawHeaders = [
            (b"User-Agent", user_agent.encode("ascii", "replace")),
            (b"Accept", b"text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"),
            (b"Accept-Encoding", b"gzip, deflate"),
        ]
        self._sent = header_pairs(self.headers)  # decoded once; Host and validators vary
        self.timeouts = timeouts

    def request(self, target: httpx.URL, conditional: Sequence[tuple[bytes, bytes]] = ()) -> httpx.Request:
        headers = [(b"Host", target.netloc), *self.headers, *conditional]
        return httpx.Request(
            "GET", target, headers=headers, stream=_NO_BODY, extensions={"timeout": self.timeouts}
        )

    async def get(
        self,
        client: HttpClient,
        target: httpx.URL,
        url: str,
        budget: float,
        *,
        read_body: BodyReader,
        conditional: Sequence[tuple[bytes, bytes]] = (),
        raise_status: bool = True,
    ) -> Hop:
        """Send one GET for ``target`` and read what we need of the response.

        A 3xx with a Location gives ``hop.location``; a 2xx is read by ``read_body``; a 304
        to a conditional request has no body. Any other status raises the status error
        (``raise_status``) or is returned as it is.
        """
        request = self.request(target, conditional)
        started = time.perf_counter()
        try:
            async with asyncio.timeout(budget):
                response = await client.send(request)
                try:
                    ttfb = time.perf_counter() - started
                    headers, received = _read_headers(response.headers.raw)
                    hop = Hop(
                        status=response.status_code,
                        reason=response.reason_phrase,
                        headers={k: v for k, v in headers.items() if k in KEPT_HEADERS},
                        http_version=response.http_version,
                        response_headers=received,
                        request_headers=[
                            ["Host", target.netloc.decode("ascii")],
                            *self._sent,
                            *header_pairs(conditional),
                        ],
                        peer_ip=_peer(response),
                        timings={"ttfb": ttfb * 1000},
                    )
                    status = hop.status
                    location = headers.get("location")
                    if status in REDIRECTS and location:
                        hop.location = _redirect_target(target, location)
                    elif 200 <= status < 300:
                        hop.body = await read_body(response, headers)
                        hop.timings["download"] = (time.perf_counter() - started - ttfb) * 1000
                    elif status == 304 and conditional:
                        pass  # unchanged since the stored copy: no body
                    elif raise_status:
                        raise status_error(status, hop.reason, url, retry_after=headers.get("retry-after"))
                finally:
                    await response.aclose()
        except _NETWORK_ERRORS as exc:
            raise classify(exc, url, timeouts=self.timeouts) from exc
        return hop
