"""The Fetcher against a real aiohttp server on 127.0.0.1 (plain HTTP, aiohttp transport).

Each test builds its own Fetcher (fresh robots cache, breaker and politeness state) and
uses its own host names under ``*.demo.test``, resolved by the fetcher's overrides.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from tests.helpers.web import local_ingestor_settings, serve
from workers.errors import BlockedError, PermanentFetchError, TransientFetchError
from workers.ingestor import Fetcher
from workers.ingestor.breaker import CircuitBreaker
from workers.ingestor.failures import HostPaused
from workers.ingestor.requeue import next_try
from workers.messages import CrawlRequest, RawPage
from workers.settings import IngestorSettings
from workers.urls import url_hash

pytestmark = pytest.mark.integration

HTML = b"<!doctype html><html><head><title>t</title></head><body><p>hello</p></body></html>"


class Site:
    """A test web server whose handlers count hits per path."""

    def __init__(self) -> None:
        self.hits: Counter[str] = Counter()
        self.in_flight = 0
        self.max_in_flight = 0
        self.starts: list[float] = []
        self.port = 0
        self.robots: dict[str, tuple[int, str]] = {}  # host -> (status, text)
        self.flaky: dict[str, int] = {}  # path -> failures left

    def url(self, host: str, path: str) -> str:
        return f"http://{host}.demo.test:{self.port}{path}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        host = request.host.split(".", 1)[0]
        self.hits[f"{host}{path}"] += 1
        self.starts.append(time.monotonic())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._route(request, host, path)
        finally:
            self.in_flight -= 1

    async def _route(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        q = request.query
        if path == "/robots.txt":
            status, text = self.robots.get(host, (404, "not found"))
            return web.Response(status=status, text=text)
        if path == "/ua":
            return web.Response(body=request.headers["User-Agent"].encode(), content_type="text/html")
        if path.startswith("/redirect/"):
            n = int(path.rsplit("/", 1)[1])
            target = "/page" if n <= 1 else f"/redirect/{n - 1}"
            raise web.HTTPFound(q.get("to", target))
        if path == "/loop":
            raise web.HTTPFound("/loop")
        if path == "/status":
            headers = {"Retry-After": q["retry_after"]} if "retry_after" in q else {}
            return web.Response(status=int(q["code"]), text="error", headers=headers)
        if path == "/flaky":
            left = self.flaky.get(host, 0)
            if left > 0:
                self.flaky[host] = left - 1
                return web.Response(status=int(q.get("code", 503)), headers={"Retry-After": "0"})
            return web.Response(body=HTML, content_type="text/html")
        if path == "/slow":
            await asyncio.sleep(float(q["s"]))
            return web.Response(body=HTML, content_type="text/html")
        if path == "/trickle":
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            await response.prepare(request)
            for _ in range(100):
                await response.write(b"<p>" + b"x" * 100 + b"</p>")
                await asyncio.sleep(0.05)
            return response
        if path == "/huge":
            response = web.StreamResponse(headers={"Content-Type": "text/html"})
            response.content_length = 20 * 1024 * 1024
            await response.prepare(request)
            chunk = b"<p>" + b"a" * 65_529 + b"</p>"
            for _ in range(20 * 1024 * 1024 // len(chunk)):
                await response.write(chunk)
            return response
        if path == "/raw":
            headers = {"Content-Type": q["ct"]} if "ct" in q else {}
            body = bytes.fromhex(q["hex"]) if "hex" in q else HTML
            response = web.Response(body=body, headers=headers)
            if "ct" not in q:
                response.content_type = ""  # aiohttp adds octet-stream otherwise
            return response
        if path == "/gzip":
            return web.Response(
                body=gzip.compress(HTML), headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
            )
        return web.Response(
            body=HTML,
            content_type="text/html",
            headers={"ETag": '"abc"', "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT", "X-Other": "1"},
        )


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    state = Site()
    async with serve(state.handle) as state.port:
        yield state


def settings(**overrides: Any) -> IngestorSettings:
    retries: dict[str, Any] = {"retry_base_delay_s": 0.01, "retry_max_delay_s": 0.05, "max_retries": 2}
    timeouts = {"connect_timeout_s": 2.0, "read_timeout_s": 2.0}
    return local_ingestor_settings(**{**retries, **timeouts, **overrides})


def req(url: str, **fields: Any) -> CrawlRequest:
    return CrawlRequest(url=url, url_hash=url_hash(url), host="h", requested_at=0.0, **fields)


async def fetch(url: str, *, max_page_bytes: int = 1_000_000, **overrides: Any) -> RawPage:
    async with Fetcher(settings(**overrides), max_page_bytes=max_page_bytes) as fetcher:
        return await fetcher.fetch(req(url))


async def test_page_fields(site: Site) -> None:
    url = site.url("ok", "/page")
    async with Fetcher(settings(), max_page_bytes=1_000_000) as fetcher:
        page = await fetcher.fetch(req(url, batch="b1", rank=7))
    assert page.status == 200 and page.final_url == url and page.redirects == []
    assert page.html_bytes() == HTML and page.body_bytes == len(HTML) and not page.truncated
    assert page.content_hash == hashlib.blake2b(HTML, digest_size=16).hexdigest()
    assert page.content_type == "text/html" and page.charset == "utf-8" and page.skipped is None
    assert page.headers["etag"] == '"abc"' and "last-modified" in page.headers
    assert "x-other" not in page.headers
    assert page.http_version == "HTTP/1.1"
    assert {"wait", "ttfb", "total"} <= page.timings.keys()
    assert (page.batch, page.rank, page.url_hash) == ("b1", 7, url_hash(url))


async def test_user_agent_names_the_contact_url(site: Site) -> None:
    page = await fetch(site.url("ua", "/ua"), user_agent="TestBot/1.0", contact_url="https://example.org/bot")
    assert page.html_bytes() == b"TestBot/1.0 (+https://example.org/bot)"


async def test_robots_disallow_is_a_skipped_page(site: Site) -> None:
    site.robots["robots1"] = (200, "User-agent: *\nDisallow: /private\n")
    page = await fetch(site.url("robots1", "/private/x"))
    assert (page.skipped, page.status, page.html_zstd, page.final_url) == (
        "robots",
        0,
        b"",
        site.url("robots1", "/private/x"),
    )
    assert site.hits["robots1/private/x"] == 0


async def test_robots_other_agent_rules_do_not_apply(site: Site) -> None:
    site.robots["robots2"] = (200, "User-agent: OtherBot\nDisallow: /\n\nUser-agent: *\nAllow: /\n")
    assert (await fetch(site.url("robots2", "/page"))).status == 200


async def test_robots_fetched_once_per_host(site: Site) -> None:
    site.robots["robots3"] = (200, "User-agent: *\nAllow: /\n")
    async with Fetcher(settings(), max_page_bytes=1_000_000) as fetcher:
        await asyncio.gather(*(fetcher.fetch(req(site.url("robots3", f"/p{i}"))) for i in range(5)))
    assert site.hits["robots3/robots.txt"] == 1


async def test_robots_4xx_allows_and_5xx_disallows_for_now(site: Site) -> None:
    site.robots["robots4"] = (403, "no")
    assert (await fetch(site.url("robots4", "/page"))).status == 200
    site.robots["robots5"] = (503, "down")
    with pytest.raises(TransientFetchError, match=r"robots.txt .* unreachable .*HTTP 503") as caught:
        await fetch(site.url("robots5", "/page"))
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert site.hits["robots5/page"] == 0


async def test_crawl_delay_spaces_requests_and_is_capped(site: Site) -> None:
    site.robots["delay1"] = (200, "User-agent: *\nCrawl-delay: 0.3\n")
    site.robots["delay2"] = (200, "User-agent: *\nCrawl-delay: 100\n")
    async with Fetcher(settings(crawl_delay_cap_s=0.2), max_page_bytes=1_000_000) as fetcher:
        for host, expected in (("delay1", 0.2), ("delay2", 0.2)):
            site.starts.clear()
            await asyncio.gather(*(fetcher.fetch(req(site.url(host, f"/p{i}"))) for i in range(3)))
            gaps = [b - a for a, b in zip(site.starts, site.starts[1:], strict=False)]
            assert len(gaps) == 3  # robots.txt + 3 pages
            # Seen by the server, so scheduling jitter on a loaded machine blurs the spacing a bit.
            assert min(gaps) >= expected * 0.75
    assert max(gaps) < 1.0  # capped at 0.2 s, not 100 s


async def test_per_host_concurrency_limit(site: Site) -> None:
    site.max_in_flight = 0
    async with Fetcher(settings(per_host_concurrency=2), max_page_bytes=1_000_000) as fetcher:
        await asyncio.gather(*(fetcher.fetch(req(site.url("conc", f"/slow?s=0.1&i={i}"))) for i in range(6)))
    assert site.max_in_flight == 2


async def test_redirect_chain_is_recorded(site: Site) -> None:
    page = await fetch(site.url("redir", "/redirect/3"))
    assert page.final_url == site.url("redir", "/page")
    assert page.redirects == [site.url("redir", f"/redirect/{n}") for n in (3, 2, 1)]


async def test_cross_host_redirect_uses_the_new_hosts_robots(site: Site) -> None:
    site.robots["redir2"] = (200, "User-agent: *\nDisallow: /page\n")
    start = site.url("redir1", f"/redirect/1?to={site.url('redir2', '/page')}")
    page = await fetch(start)
    assert page.skipped == "robots" and page.final_url == site.url("redir2", "/page")
    assert page.redirects == [start] and site.hits["redir2/page"] == 0


async def test_too_many_redirects(site: Site) -> None:
    with pytest.raises(PermanentFetchError, match=r"too many redirects \(more than 5\)"):
        await fetch(site.url("redir", "/redirect/6"))
    with pytest.raises(PermanentFetchError, match="too many redirects"):
        await fetch(site.url("redir", "/loop"), max_redirects=2)


async def test_redirect_to_metadata_address_is_refused(site: Site) -> None:
    with pytest.raises(BlockedError, match="cloud metadata"):
        await fetch(site.url("redir", "/redirect/1?to=http://169.254.169.254/latest/meta-data/"))


async def test_404_is_permanent_and_not_retried(site: Site) -> None:
    with pytest.raises(PermanentFetchError, match="HTTP 404 Not Found from http://e404") as caught:
        await fetch(site.url("e404", "/status?code=404"))
    assert caught.value.status == 404
    assert site.hits["e404/status"] == 1


async def test_500_is_retried_then_transient(site: Site) -> None:
    with pytest.raises(TransientFetchError, match=r"HTTP 500 .* \(gave up after 3 attempts\)"):
        await fetch(site.url("e500", "/status?code=500"), max_retries=2)
    assert site.hits["e500/status"] == 3


async def test_flaky_then_ok(site: Site) -> None:
    site.flaky["flaky"] = 2
    page = await fetch(site.url("flaky", "/flaky"), max_retries=2)
    assert page.status == 200 and site.hits["flaky/flaky"] == 3


async def test_429_retry_after_is_honoured(site: Site) -> None:
    site.flaky["e429"] = 1
    started = time.monotonic()
    page = await fetch(site.url("e429", "/flaky?code=429"))
    assert page.status == 200 and site.hits["e429/flaky"] == 2
    assert time.monotonic() - started < 2.0


async def test_429_waits_retry_after_seconds(site: Site) -> None:
    started = time.monotonic()
    with pytest.raises(TransientFetchError, match=r"HTTP 429 .*Retry-After 1s"):
        await fetch(site.url("e429b", "/status?code=429&retry_after=1"), max_retries=1)
    assert time.monotonic() - started >= 0.95
    assert site.hits["e429b/status"] == 2


async def test_retry_after_above_cap_fails_at_once(site: Site) -> None:
    with pytest.raises(
        TransientFetchError, match="longer than the 5s the ingestor waits in-process"
    ) as caught:
        await fetch(site.url("e503", "/status?code=503&retry_after=120"), retry_after_cap_s=5.0)
    assert caught.value.retry_after == 120
    assert site.hits["e503/status"] == 1


async def test_read_timeout(site: Site) -> None:
    with pytest.raises(TransientFetchError, match=r"read timeout: slow.demo.test sent nothing for 0.2s"):
        await fetch(site.url("slow", "/slow?s=1"), read_timeout_s=0.2, max_retries=0)


async def test_total_timeout(site: Site) -> None:
    with pytest.raises(TransientFetchError, match=r"total timeout: .* longer than 0.4s"):
        await fetch(site.url("trickle", "/trickle"), total_timeout_s=0.4, max_retries=0)


async def test_connection_refused_is_transient(site: Site) -> None:
    with pytest.raises(TransientFetchError, match=r"cannot connect to closed.demo.test"):
        await fetch("http://closed.demo.test:1/page", max_retries=0)


async def test_huge_body_is_truncated_while_streaming(site: Site) -> None:
    started = time.monotonic()
    page = await fetch(site.url("huge", "/huge"), max_page_bytes=100_000)
    assert page.truncated and len(page.html_bytes()) == 100_000
    assert page.body_bytes == 20 * 1024 * 1024  # what the server announced
    assert page.content_hash == hashlib.blake2b(page.html_bytes(), digest_size=16).hexdigest()
    assert time.monotonic() - started < 3.0


async def test_non_html_is_skipped_not_failed(site: Site) -> None:
    page = await fetch(site.url("types", "/raw?ct=image/png&hex=89504e47"))
    assert page.skipped == "non-html content-type: image/png"
    assert page.html_zstd == b"" and page.status == 200 and page.charset is None


async def test_missing_content_type_is_sniffed(site: Site) -> None:
    page = await fetch(site.url("types", "/raw"))
    assert page.skipped is None and page.html_bytes() == HTML and page.content_type == ""
    page = await fetch(site.url("types", "/raw?hex=00010203"))
    assert page.skipped is not None and "does not look like HTML" in page.skipped


async def test_xhtml_is_kept(site: Site) -> None:
    page = await fetch(site.url("types", "/raw?ct=application/xhtml%2Bxml"))
    assert page.skipped is None and page.content_type == "application/xhtml+xml"


async def test_bad_and_legacy_charsets(site: Site) -> None:
    body = "<html><body>caf\u00e9</body></html>".encode()
    page = await fetch(site.url("cs", f"/raw?ct=text/html;charset=klingon&hex={body.hex()}"))
    assert page.charset == "utf-8"  # unknown label ignored, body is valid UTF-8
    latin = "<html><head><meta charset=latin-1></head><body>caf\u00e9</body></html>".encode("latin-1")
    page = await fetch(site.url("cs", f"/raw?ct=text/html&hex={latin.hex()}"))
    assert page.charset == "iso8859-1"
    legacy = b"<p>caf\xe9 cr\xe8me</p>"
    page = await fetch(site.url("cs", f"/raw?ct=text/html&hex={legacy.hex()}"))
    assert page.charset == "cp1252"  # undeclared and not UTF-8: the web's legacy default


async def test_gzip_body_is_decoded(site: Site) -> None:
    page = await fetch(site.url("gz", "/gzip"))
    assert page.html_bytes() == HTML and page.headers["content-encoding"] == "gzip"


async def test_ssrf_guard_refuses_loopback_when_private_not_allowed(site: Site) -> None:
    with pytest.raises(BlockedError, match=r"SSRF guard: 127.0.0.1 is a loopback address"):
        await fetch(f"http://127.0.0.1:{site.port}/page", allow_private_networks=False)
    with pytest.raises(BlockedError, match=r"ok.demo.test resolves to 127.0.0.1, which is a loopback"):
        await fetch(site.url("ok", "/page"), allow_private_networks=False)


@pytest.mark.parametrize(
    ("ip", "what"), [("10.1.2.3", "a private address"), ("169.254.169.254", "a cloud metadata address")]
)
async def test_ssrf_guard_refuses_private_overrides(ip: str, what: str) -> None:
    overrides = {"internal.corp": ip}
    for url in ("http://internal.corp/", "https://internal.corp/"):
        with pytest.raises(BlockedError, match=f"internal.corp resolves to {ip}, which is {what}"):
            await fetch(url, allow_private_networks=False, resolve_overrides=overrides)


async def test_unknown_host_is_a_dns_failure() -> None:
    with pytest.raises(PermanentFetchError, match=r"DNS lookup of no-such-host.invalid failed"):
        await fetch("http://no-such-host.invalid/", resolve_overrides={})


async def test_breaker_opens_after_consecutive_failures(site: Site) -> None:
    url = site.url("brk", "/status?code=500")
    async with Fetcher(settings(max_retries=0, breaker_failures=3), max_page_bytes=1_000_000) as fetcher:
        for _ in range(3):
            with pytest.raises(TransientFetchError):
                await fetcher.fetch(req(url))
        with pytest.raises(HostPaused, match=r"host brk.demo.test paused .*: 3 consecutive failures"):
            await fetcher.fetch(req(site.url("brk", "/page")))
    assert site.hits["brk/status"] == 3 and site.hits["brk/page"] == 0


@pytest.mark.parametrize("pause_s", [0.01, 60.0], ids=["waited-in-process", "longer-than-the-cap"])
async def test_a_paused_host_keeps_its_trip_count_through_the_retries(pause_s: float) -> None:
    # The fetcher adds its retry note to the message; the HostPaused it raises must still say
    # how often the host tripped, or next_try re-queues the request for every pause, for ever
    # (the multi-host drill's URL that stayed queued behind site-004's breaker).
    now = [0.0]
    ingestor = settings(max_retries=1, retry_after_cap_s=1.0, breaker_failures=1, max_requeues=2)
    async with Fetcher(ingestor, max_page_bytes=1_000_000) as fetcher:
        fetcher.breaker = CircuitBreaker(failures=1, pause_s=pause_s, clock=lambda: now[0])
        for _ in range(3):  # three trips in a row: each half-open try failed
            fetcher.breaker.record_failure("paused.demo.test", "HTTP 500")
            now[0] += pause_s
        now[0] -= pause_s / 2  # inside the third pause
        request = req("http://paused.demo.test/page", requeues=2)
        with pytest.raises(HostPaused) as caught:
            await fetcher.fetch(request)
    assert caught.value.trips == 3
    given_up = next_try(request, caught.value, ingestor, now=time.time())
    assert isinstance(given_up, TransientFetchError) and "tripped 3 times in a row" in str(given_up)


@pytest.mark.parametrize("http2", [True, False])
async def test_tls_handshake_failure_is_retried_then_permanent(site: Site, http2: bool) -> None:
    url = f"https://tlsbad.demo.test:{site.port}/page"  # a plain-HTTP port
    with pytest.raises(
        PermanentFetchError, match=r"TLS handshake with tlsbad.demo.test failed: .*gave up after 2"
    ):
        await fetch(url, http2=http2, max_retries=1)
