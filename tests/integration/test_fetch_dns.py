"""DNS through c-ares against a real DNS server on 127.0.0.1 (a small UDP responder).

``ok-*.dns.test`` answer A 127.0.0.1, ``nx-*`` NXDOMAIN, ``servfail-*`` SERVFAIL, and
``silent-*`` never answer. A DNS failure must be reported as a DNS failure with its own
message — never as the page's "total timeout" — also with hundreds of lookups in flight.
"""

from __future__ import annotations

import asyncio
import struct
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from aiohttp import web

from workers.errors import PermanentFetchError, TransientFetchError
from workers.ingestor import Fetcher
from workers.messages import CrawlRequest, RawPage
from workers.settings import IngestorSettings
from workers.urls import url_hash

pytestmark = pytest.mark.integration


class DNSServer(asyncio.DatagramProtocol):
    """Answers A queries by the first label's prefix (see the module docstring)."""

    def __init__(self) -> None:
        self.transport: asyncio.DatagramTransport | None = None
        self.queries = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.queries += 1
        labels, offset = [], 12
        while data[offset]:
            length = data[offset]
            labels.append(data[offset + 1 : offset + 1 + length].decode())
            offset += 1 + length
        question = data[12 : offset + 5]
        qtype = struct.unpack("!H", data[offset + 1 : offset + 3])[0]
        name = labels[0]
        if name.startswith("silent"):
            return
        rcode = 3 if name.startswith("nx") else 2 if name.startswith("servfail") else 0
        answers = b""
        if rcode == 0 and qtype == 1:
            answers = b"\xc0\x0c" + struct.pack("!HHIH", 1, 1, 60, 4) + bytes([127, 0, 0, 1])
        header = data[:2] + struct.pack("!HHHHH", 0x8180 | rcode, 1, 1 if answers else 0, 0, 0)
        assert self.transport is not None
        self.transport.sendto(header + question + answers, addr)


@pytest.fixture(scope="module")
def dns() -> Iterator[tuple[str, DNSServer]]:
    """The server on its own event loop in a thread, as a real resolver is not our loop."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    async def open_endpoint() -> tuple[asyncio.DatagramTransport, DNSServer]:
        return await loop.create_datagram_endpoint(DNSServer, local_addr=("127.0.0.1", 0))

    transport, server = asyncio.run_coroutine_threadsafe(open_endpoint(), loop).result(10)
    port = transport.get_extra_info("sockname")[1]
    try:
        yield f"127.0.0.1:{port}", server
    finally:
        loop.call_soon_threadsafe(transport.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


@pytest.fixture(scope="module")
async def web_port() -> AsyncIterator[int]:
    async def page(_: web.Request) -> web.Response:
        return web.Response(body=b"<html><body><p>resolved</p></body></html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield runner.addresses[0][1]
    await runner.cleanup()


def fetcher(server: str, **overrides: Any) -> Fetcher:
    options: dict[str, Any] = {
        "allowed_networks": ["127.0.0.1/32"],
        "dns_servers": [server],
        "dns_timeout_s": 1.0,
        "total_timeout_s": 20.0,
        "per_host_delay_s": 0.0,
        **overrides,
    }
    return Fetcher(IngestorSettings(**options), max_page_bytes=100_000)


def req(url: str) -> CrawlRequest:
    return CrawlRequest(url=url, url_hash=url_hash(url), host="h", requested_at=0.0)


async def test_names_resolve_through_the_configured_server(dns: tuple[str, DNSServer], web_port: int) -> None:
    async with fetcher(dns[0]) as f:
        page = await f.fetch(req(f"http://ok-1.dns.test:{web_port}/page"))
    assert page.status == 200 and page.peer_ip == "127.0.0.1"


async def test_dns_failures_are_reported_as_dns_failures(dns: tuple[str, DNSServer], web_port: int) -> None:
    async with fetcher(dns[0]) as f:
        with pytest.raises(
            PermanentFetchError, match=r"^DNS lookup of nx-1.dns.test failed: Domain name not found"
        ):
            await f.fetch(req(f"http://nx-1.dns.test:{web_port}/"))
        with pytest.raises(TransientFetchError, match=r"^DNS lookup of servfail-1.dns.test failed"):
            await f.fetch(req(f"http://servfail-1.dns.test:{web_port}/"))
        started = time.monotonic()
        with pytest.raises(
            TransientFetchError, match=r"^DNS lookup of silent-1.dns.test (failed: Timeout|timed out)"
        ):
            await f.fetch(req(f"http://silent-1.dns.test:{web_port}/"))
        assert time.monotonic() - started < 3.0  # the DNS deadline, not the 20 s page deadline


async def test_hundreds_of_failing_lookups_in_flight_fail_fast_and_as_dns(
    dns: tuple[str, DNSServer], web_port: int
) -> None:
    async with fetcher(dns[0], concurrency=500) as f:
        started = time.monotonic()
        results = await asyncio.gather(
            *(f.fetch(req(f"http://nx-many{i}.dns.test:{web_port}/")) for i in range(400)),
            *(f.fetch(req(f"http://ok-many{i}.dns.test:{web_port}/")) for i in range(100)),
            return_exceptions=True,
        )
        elapsed = time.monotonic() - started
    failures = [r for r in results[:400] if isinstance(r, Exception)]
    assert len(failures) == 400 and all(
        isinstance(e, PermanentFetchError) and "Domain name not found" in str(e) for e in failures
    ), {type(e).__name__ + ": " + str(e)[:80] for e in failures}
    assert all(isinstance(r, RawPage) and r.status == 200 for r in results[400:])
    assert elapsed < 15.0, elapsed
