"""HTTPS: HTTP/2 negotiated by ALPN (hypercorn on 127.0.0.1 with a test CA), TLS failures.

The certificate is issued for ``*.demo.test`` by a CA generated here; the fetcher trusts it
through ``IngestorSettings.ca_bundle``. The host names resolve to 127.0.0.1 by override,
so a passing handshake also proves SNI and verification use the host name, not the IP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.stage_ingestor import make_certificates
from workers.errors import PermanentFetchError
from workers.ingestor import Fetcher
from workers.messages import CrawlRequest, RawPage
from workers.settings import IngestorSettings
from workers.urls import url_hash

pytestmark = pytest.mark.integration

hypercorn = pytest.importorskip("hypercorn")
from hypercorn.asyncio import serve  # noqa: E402
from hypercorn.config import Config  # noqa: E402

HTML = b"<!doctype html><html><body><p>over TLS</p></body></html>"
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["path"] == "/robots.txt":
        status, headers, body = 404, [(b"content-type", b"text/plain")], b"none"
    else:
        status, headers, body = 200, [(b"content-type", b"text/html; charset=utf-8")], HTML
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class TLSSite:
    def __init__(self, port: int, ca_bundle: Path) -> None:
        self.port = port
        self.ca_bundle = ca_bundle

    def url(self, host: str, path: str = "/page") -> str:
        return f"https://{host}.demo.test:{self.port}{path}"


@pytest.fixture(scope="module")
async def tls_site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[TLSSite]:
    ca, cert, key = make_certificates(tmp_path_factory.mktemp("tls"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.certfile, config.keyfile = str(cert), str(key)
    config.alpn_protocols = ["h2", "http/1.1"]
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    server = asyncio.ensure_future(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(200):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            break
        except OSError:
            await asyncio.sleep(0.02)
    yield TLSSite(port, ca)
    stop.set()
    await asyncio.wait_for(server, 10)


async def fetch(url: str, **overrides: Any) -> RawPage:
    options: dict[str, Any] = {
        "allow_private_networks": True,
        "resolve_overrides": {"*.demo.test": "127.0.0.1"},
        "per_host_delay_s": 0.0,
        "per_ip_delay_s": 0.0,
        "max_retries": 0,
    }
    options.update(overrides)
    async with Fetcher(IngestorSettings(**options), max_page_bytes=1_000_000) as fetcher:
        return await fetcher.fetch(CrawlRequest(url=url, url_hash=url_hash(url), host="h", requested_at=0.0))


async def test_https_negotiates_http2(tls_site: TLSSite) -> None:
    page = await fetch(tls_site.url("h2"), ca_bundle=tls_site.ca_bundle)
    assert page.http_version == "HTTP/2"
    assert page.html_bytes() == HTML and page.charset == "utf-8"
    assert page.peer_ip == "127.0.0.1" and page.status_reason == "OK"  # as received, for WARC
    assert ["content-type", "text/html; charset=utf-8"] in page.response_headers
    sent = dict(page.request_headers)
    assert sent["Host"] == f"h2.demo.test:{tls_site.port}" and sent["User-Agent"].startswith("StreamCrawl/")


async def test_https_over_aiohttp_when_http2_is_off(tls_site: TLSSite) -> None:
    page = await fetch(tls_site.url("h1"), ca_bundle=tls_site.ca_bundle, http2=False)
    assert page.http_version == "HTTP/1.1" and page.html_bytes() == HTML
    assert page.peer_ip == "127.0.0.1"


@pytest.mark.parametrize("http2", [True, False])
async def test_untrusted_certificate_is_a_permanent_tls_failure(tls_site: TLSSite, http2: bool) -> None:
    with pytest.raises(PermanentFetchError, match=r"TLS certificate of untrusted.demo.test rejected"):
        await fetch(tls_site.url("untrusted"), http2=http2)


async def test_one_small_pool_per_origin_and_idle_pools_closed(tls_site: TLSSite) -> None:
    from workers.ingestor.client import _OriginPools, make_ssl_context
    from workers.ingestor.resolver import Resolver

    now = [0.0]
    pools = _OriginPools(
        resolver=Resolver(overrides={"*.demo.test": "127.0.0.1"}, allow_private_networks=True),
        ssl_context=make_ssl_context(tls_site.ca_bundle, role="httpcore"),
        http2=True,
        per_origin=2,
        idle_s=10.0,
        clock=lambda: now[0],
    )
    try:
        for host in ("p1", "p2", "p3", "p1"):
            response = await pools.handle_async_request(
                httpx.Request("GET", tls_site.url(host), extensions={"timeout": {"connect": 5, "read": 5}})
            )
            await response.aread()
            await response.aclose()
            assert response.http_version == "HTTP/2"
        assert pools.pools == 3
        now[0] = 11.0
        pools._until_sweep = 1
        response = await pools.handle_async_request(httpx.Request("GET", tls_site.url("p4")))
        await response.aclose()
        assert pools.pools == 1  # p1-p3 idle for more than 10 s: closed
    finally:
        await pools.aclose()
