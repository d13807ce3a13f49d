"""The Fetcher's crawl-loop and WARC side against a real aiohttp server on 127.0.0.1.

Conditional recrawl (a server that honours ETag / Last-Modified), canonical redirect
targets, robots.txt and sitemap requests, the response as received, binary bodies
labelled HTML, per-IP politeness (two host names on one address) and RFC 9309 robots
failures that leave the circuit breaker alone.
"""

from __future__ import annotations

import asyncio
import gzip
import time
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from tests.helpers.web import local_ingestor_settings, serve
from workers.errors import PermanentFetchError, TransientFetchError
from workers.ingestor import Fetcher
from workers.messages import CrawlContext, CrawlRequest, RawPage, Scope, decompress_html
from workers.urls import url_hash

pytestmark = pytest.mark.integration

HTML = b"<!doctype html><html><head><title>t</title></head><body><p>hello</p></body></html>"
ETAG = '"v1"'
LAST_MODIFIED = "Mon, 01 Jan 2024 00:00:00 GMT"
PNG = (Path(__file__).resolve().parents[1] / "data" / "binary" / "python.png").read_bytes()
SITEMAP = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">'
    b"<url><loc>http://example.test/a</loc></url></urlset>"
)


class Site:
    def __init__(self) -> None:
        self.port = 0
        self.hits: Counter[str] = Counter()
        self.seen_headers: dict[str, list[tuple[str, str]]] = {}
        self.starts: list[float] = []
        self.in_flight = self.max_in_flight = 0
        self.robots: dict[str, tuple[int, str]] = {}

    def url(self, host: str, path: str) -> str:
        return f"http://{host}.demo.test:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        host = request.host.split(".", 1)[0]
        key = f"{host}{request.path_qs}"
        self.hits[key] += 1
        self.seen_headers[key] = list(request.headers.items())
        self.starts.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._route(request, host)
        finally:
            self.in_flight -= 1

    async def _route(self, request: web.Request, host: str) -> web.StreamResponse:
        path = request.path
        if path == "/robots.txt":
            status, text = self.robots.get(host, (404, "none"))
            return web.Response(status=status, text=text)
        if path == "/cond":  # honours both validators, as a real server does
            if request.headers.get("If-None-Match") == ETAG or (
                "If-None-Match" not in request.headers
                and request.headers.get("If-Modified-Since") == LAST_MODIFIED
            ):
                return web.Response(status=304, headers={"ETag": ETAG})
            return web.Response(
                body=HTML, content_type="text/html", headers={"ETag": ETAG, "Last-Modified": LAST_MODIFIED}
            )
        if path == "/headers":
            response = web.Response(body=HTML, content_type="text/html", reason="Fine Thanks")
            response.headers.add("X-Repeated", "one")
            response.headers.add("Link", "</a>; rel=preload")
            response.headers.add("X-Repeated", "two")
            return response
        if path == "/big":
            return web.Response(body=HTML + b"<p>" + b"x" * 200_000 + b"</p>", content_type="text/html")
        if path == "/to":
            return web.Response(status=302, headers={"Location": request.query["loc"]})
        if path == "/png-as-html":
            return web.Response(body=PNG, content_type="text/html")
        if path == "/sitemap.xml":
            return web.Response(body=SITEMAP, content_type="application/xml")
        if path == "/sitemap.xml.gz":
            return web.Response(body=gzip.compress(SITEMAP), content_type="application/gzip")
        if path == "/encoded-sitemap.xml":
            return web.Response(
                body=gzip.compress(SITEMAP), headers={"Content-Type": "text/xml", "Content-Encoding": "gzip"}
            )
        if path == "/gone.xml":
            return web.Response(status=404)
        if path == "/html-sitemap":
            return web.Response(body=HTML, content_type="text/html")
        if path == "/slow":
            await asyncio.sleep(0.1)
        return web.Response(body=HTML, content_type="text/html")


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    state = Site()
    async with serve(state.handle) as state.port:
        yield state


settings = local_ingestor_settings


def req(url: str, **fields: Any) -> CrawlRequest:
    return CrawlRequest(url=url, url_hash=url_hash(url), host="h", requested_at=0.0, **fields)


async def fetch(request: CrawlRequest, **overrides: Any) -> RawPage:
    async with Fetcher(settings(**overrides), max_page_bytes=1_000_000) as fetcher:
        return await fetcher.fetch(request)


async def test_response_as_received(site: Site) -> None:
    url = site.url("warc", "/headers")
    page = await fetch(req(url))
    assert page.status == 200 and page.status_reason == "Fine Thanks"
    ours = [pair for pair in page.response_headers if pair[0] in ("X-Repeated", "Link")]
    assert ours == [["X-Repeated", "one"], ["Link", "</a>; rel=preload"], ["X-Repeated", "two"]]
    assert ["Content-Type", "text/html"] in page.response_headers
    assert page.headers["link"] == "</a>; rel=preload" and "x-repeated" not in page.headers  # kept subset
    # What was sent is what the server received, nothing more and nothing less.
    assert sorted(map(tuple, page.request_headers)) == sorted(site.seen_headers["warc/headers"])
    assert [name for name, _ in page.request_headers] == ["Host", "User-Agent", "Accept", "Accept-Encoding"]
    # The peer address, whether aiohttp already released the connection (small body) or not.
    assert page.peer_ip == "127.0.0.1"
    assert (await fetch(req(site.url("warc", "/big")))).peer_ip == "127.0.0.1"


async def test_conditional_recrawl_gets_a_304_without_a_body(site: Site) -> None:
    url = site.url("cond", "/cond")
    first = await fetch(req(url))
    assert first.status == 200 and first.headers["etag"] == ETAG
    for validators in ({"etag": ETAG}, {"last_modified": LAST_MODIFIED}):
        page = await fetch(req(url, **validators))
        assert (page.status, page.html_zstd, page.skipped, page.body_bytes) == (304, b"", None, 0)
        sent = dict(page.request_headers)
        assert sent.get("If-None-Match") == validators.get("etag")
        assert sent.get("If-Modified-Since") == validators.get("last_modified")
    changed = await fetch(req(url, etag='"old"'))
    assert changed.status == 200 and changed.html_bytes() == HTML


async def test_redirect_targets_are_canonical(site: Site) -> None:
    start = site.url("canon", "/to?loc=/Page%7e1?b=2%26a=1%26utm_source=mail%23frag")
    page = await fetch(req(start))
    assert page.final_url == site.url("canon", "/Page~1?a=1&b=2")
    assert page.redirects == [start] and site.hits["canon/Page~1?a=1&b=2"] == 1
    with pytest.raises(PermanentFetchError, match=r"redirect from .* to an invalid URL"):
        await fetch(req(site.url("canon", "/to?loc=http://a..b/")))


async def test_context_and_ids_are_carried_to_every_page(site: Site) -> None:
    ctx = CrawlContext(
        depth=2, seed="ctx.demo.test", source="link", parent="p" * 32, scope=Scope(max_depth=3)
    )
    fields: dict[str, Any] = {"ctx": ctx, "request_id": "req-1", "batch": "b", "rank": 9}
    site.robots["ctx"] = (200, "User-agent: *\nDisallow: /private\n")
    for url, kind in (
        (site.url("ctx", "/page"), "page"),
        (site.url("ctx", "/private"), "page"),
        (site.url("ctx", "/"), "robots"),
        (site.url("ctx", "/sitemap.xml"), "sitemap"),
    ):
        page = await fetch(req(url, kind=kind, **fields))
        assert (page.ctx, page.request_id, page.batch, page.rank, page.kind) == (ctx, "req-1", "b", 9, kind)


async def test_robots_request_reads_robots_txt(site: Site) -> None:
    text = "User-agent: *\nDisallow: /x\nSitemap: http://example.test/sitemap.xml\n"
    site.robots["rk"] = (200, text)
    page = await fetch(req(site.url("rk", "/some/page"), kind="robots"))
    assert page.kind == "robots" and page.status == 200 and page.final_url == site.url("rk", "/robots.txt")
    assert page.html_bytes() == text.encode() and page.content_type == "text/plain"
    missing = await fetch(req(site.url("rk404", "/"), kind="robots"))
    assert (missing.status, missing.html_zstd) == (404, b"")  # 4xx: no robots.txt, crawl everything
    site.robots["rk503"] = (503, "down")
    with pytest.raises(TransientFetchError, match=r"robots.txt of .*rk503.* is unreachable") as caught:
        await fetch(req(site.url("rk503", "/"), kind="robots"))
    assert caught.value.retry_after is not None and caught.value.retry_after > 0


async def test_sitemap_requests_keep_gzip_and_respect_types_and_cap(site: Site) -> None:
    plain = await fetch(req(site.url("sm", "/sitemap.xml"), kind="sitemap"))
    assert plain.html_bytes() == SITEMAP and plain.content_type == "application/xml" and plain.charset is None
    for path in ("/sitemap.xml.gz", "/encoded-sitemap.xml"):
        page = await fetch(req(site.url("sm", path), kind="sitemap"))
        body = decompress_html(page.html_zstd)
        assert body[:2] == b"\x1f\x8b" and gzip.decompress(body) == SITEMAP, path  # still gzipped
    html = await fetch(req(site.url("sm", "/html-sitemap"), kind="sitemap"))
    assert html.skipped == "non-sitemap content-type: text/html" and html.html_zstd == b""
    capped = await fetch(req(site.url("sm", "/sitemap.xml"), kind="sitemap"), sitemap_max_bytes=40)
    assert capped.truncated and len(capped.html_bytes()) == 40
    with pytest.raises(PermanentFetchError, match="HTTP 404"):
        await fetch(req(site.url("sm", "/gone.xml"), kind="sitemap"))


async def test_binary_body_labelled_html_is_skipped(site: Site) -> None:
    page = await fetch(req(site.url("bin", "/png-as-html")))
    assert (page.skipped, page.html_zstd, page.status, page.charset) == ("binary", b"", 200, None)


async def test_two_host_names_on_one_address_share_its_crawl_delay(site: Site) -> None:
    for host in ("ipa", "ipb"):
        site.robots[host] = (200, "User-agent: *\nCrawl-delay: 0.3\n")
    async with Fetcher(settings(crawl_delay_cap_s=1.0), max_page_bytes=1_000_000) as fetcher:
        await asyncio.gather(*(fetcher.fetch(req(site.url(h, "/robots-warmup"))) for h in ("ipa", "ipb")))
        site.starts.clear()
        await asyncio.gather(
            *(fetcher.fetch(req(site.url(h, f"/p{i}"))) for h in ("ipa", "ipb") for i in range(3))
        )
    gaps = [b - a for a, b in zip(site.starts, site.starts[1:], strict=False)]
    assert len(site.starts) == 6
    # Seen by the server: one address, one Crawl-delay, not one per host name.
    assert min(gaps) >= 0.3 * 0.75, gaps


async def test_per_ip_concurrency_caps_host_names_together(site: Site) -> None:
    site.max_in_flight = 0
    async with Fetcher(settings(per_host_concurrency=2, per_ip_concurrency=2), max_page_bytes=1_000_000) as f:
        await asyncio.gather(*(f.fetch(req(site.url(f"ipc{i % 3}", f"/slow?i={i}"))) for i in range(9)))
    assert site.max_in_flight == 2


async def test_robots_failures_do_not_open_the_breaker(site: Site) -> None:
    site.robots["rbrk"] = (503, "down")
    async with Fetcher(settings(breaker_failures=1), max_page_bytes=1_000_000) as fetcher:
        for path in ("/a", "/b"):
            with pytest.raises(TransientFetchError, match="unreachable"):
                await fetcher.fetch(req(site.url("rbrk", path)))
        assert not fetcher.breaker.is_open("rbrk.demo.test")
    assert site.hits["rbrk/a"] == site.hits["rbrk/b"] == 0  # RFC 9309: disallowed while unreachable
