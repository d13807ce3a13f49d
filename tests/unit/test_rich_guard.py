"""The browser's request guard without a browser: every rule, against an in-memory HTTP client."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx
import pytest
from prometheus_client import REGISTRY

from workers.messages import RawPage, compress_html
from workers.processed import cap_utf8
from workers.rich.cache import ResourceCache
from workers.rich.document import document_of, fulfil_headers
from workers.rich.guard import Fetched, PageBudget, Refusal, RequestGuard, SubRequest
from workers.settings import IngestorSettings, RendererSettings

Handler = Callable[[httpx.Request], Awaitable[httpx.Response]]
INGESTOR = IngestorSettings(
    allowed_networks=["127.0.0.1/32"],
    resolve_overrides={"site.test": "127.0.0.1", "rebind.test": "127.0.0.2"},
)


class FakeSender:
    """Answers by URL; records what was sent (``robots.txt`` is a 404 unless routed)."""

    def __init__(self, routes: dict[str, Handler] | None = None) -> None:
        self.routes = routes or {}
        self.sent: list[httpx.Request] = []

    async def send(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        handler = self.routes.get(str(request.url))
        if handler is None:
            return httpx.Response(404, content=b"not found", request=request)
        return await handler(request)

    async def aclose(self) -> None:
        return None

    def paths(self) -> list[str]:
        return [r.url.path for r in self.sent if r.url.path != "/robots.txt"]


def ok(body: bytes = b"body", **headers: str) -> Handler:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=headers, content=body, request=request)

    return answer


def redirect(location: str, status: int = 302) -> Handler:
    async def answer(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, headers={"location": location}, request=request)

    return answer


def slow(seconds: float, started: asyncio.Event | None = None) -> Handler:
    async def answer(request: httpx.Request) -> httpx.Response:
        if started is not None:
            started.set()
        await asyncio.sleep(seconds)
        return httpx.Response(200, content=b"late", request=request)

    return answer


def guard(sender: FakeSender, **settings: object) -> RequestGuard:
    return RequestGuard(RendererSettings(**settings), INGESTOR, client=sender)  # type: ignore[arg-type]


def sub(url: str, *, kind: str = "script", method: str = "GET", **headers: str) -> SubRequest:
    return SubRequest(method=method, url=url, resource_type=kind, headers=headers)


async def test_fetches_an_allowed_request_with_our_user_agent_and_no_cookies() -> None:
    sender = FakeSender({"http://site.test/app.js": ok(b"js", **{"Set-Cookie": "a=b", "X-Kept": "1"})})
    g = guard(sender)
    budget = g.budget(timeout_s=5)
    result = await g.fetch(
        sub(
            "http://site.test/app.js",
            cookie="secret=1",
            referer="http://site.test/",
            **{"sec-ch-ua": "Chrome"},
        ),
        budget,
    )
    assert isinstance(result, Fetched) and result.body == b"js" and result.status == 200
    assert "set-cookie" not in result.headers and result.headers["x-kept"] == "1"
    sent = sender.sent[-1]
    assert sent.headers["user-agent"] == INGESTOR.user_agent_header
    assert "cookie" not in sent.headers and "sec-ch-ua" not in sent.headers
    assert sent.headers["referer"] == "http://site.test/"
    assert budget.fetched == 1 and budget.bytes_left == RendererSettings().max_resource_bytes_per_page - 2


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (sub("http://site.test/x.png", kind="image"), "type"),
        (sub("http://site.test/x.woff2", kind="font"), "type"),
        (sub("http://site.test/api", method="PUT"), "method"),
        (sub("ftp://site.test/file"), "scheme"),
        (sub("http://10.0.0.1/metadata"), "ssrf"),
        (sub("http://169.254.169.254/latest/meta-data/"), "ssrf"),
        (sub("http://127.0.0.2:8080/canary"), "ssrf"),
        (sub("http://rebind.test/canary"), "ssrf"),  # a name that resolves to a refused address
    ],
)
async def test_refusals_send_nothing(request_: SubRequest, reason: str) -> None:
    sender = FakeSender()
    g = guard(sender)
    budget = g.budget(timeout_s=5)
    before = REGISTRY.get_sample_value("renderer_requests_total", {"outcome": reason}) or 0
    result = await g.fetch(request_, budget)
    assert isinstance(result, Refusal) and result.reason == reason, result
    assert sender.sent == []
    assert budget.refused[reason] == 1
    assert REGISTRY.get_sample_value("renderer_requests_total", {"outcome": reason}) == before + 1


async def test_redirects_are_followed_here_and_every_hop_is_checked() -> None:
    sender = FakeSender(
        {
            "http://site.test/go": redirect("http://rebind.test/secret"),
            "http://site.test/hop": redirect("/final"),
            "http://site.test/final": ok(b"final"),
        }
    )
    g = guard(sender)
    budget = g.budget(timeout_s=5)
    refused = await g.fetch(sub("http://site.test/go"), budget)
    assert isinstance(refused, Refusal) and refused.reason == "ssrf"
    fetched = await g.fetch(sub("http://site.test/hop"), budget)
    assert (
        isinstance(fetched, Fetched) and fetched.body == b"final" and fetched.url == "http://site.test/final"
    )
    assert sender.paths() == ["/go", "/hop", "/final"]


async def test_see_other_turns_a_post_into_a_get() -> None:
    sender = FakeSender({"http://site.test/form": redirect("/done", 303), "http://site.test/done": ok()})
    g = guard(sender)
    request = SubRequest(
        method="POST", url="http://site.test/form", resource_type="fetch", headers={}, body=b"a=1"
    )
    assert isinstance(await g.fetch(request, g.budget(timeout_s=5)), Fetched)
    assert [r.method for r in sender.sent if r.url.path != "/robots.txt"] == ["POST", "GET"]


async def test_too_many_redirects_are_refused() -> None:
    sender = FakeSender({"http://site.test/loop": redirect("/loop")})
    result = await guard(sender).fetch(
        sub("http://site.test/loop"), PageBudget(requests=9, nbytes=99, deadline=1e12)
    )
    assert isinstance(result, Refusal) and result.reason == "redirects"


async def test_robots_txt_disallow_applies_and_is_read_once() -> None:
    async def robots(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"User-agent: StreamCrawl\nDisallow: /private/\n", request=request)

    sender = FakeSender({"http://site.test/robots.txt": robots, "http://site.test/public.js": ok()})
    g = guard(sender)
    budget = g.budget(timeout_s=5)
    refused = await g.fetch(sub("http://site.test/private/data.json", kind="fetch"), budget)
    assert isinstance(refused, Refusal) and refused.reason == "robots"
    assert isinstance(await g.fetch(sub("http://site.test/public.js"), budget), Fetched)
    assert [r.url.path for r in sender.sent] == ["/robots.txt", "/public.js"]


async def test_unreachable_robots_txt_means_disallow() -> None:
    async def down(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, request=request)

    sender = FakeSender({"http://site.test/robots.txt": down, "http://site.test/app.js": ok()})
    result = await guard(sender).fetch(
        sub("http://site.test/app.js"), PageBudget(requests=9, nbytes=99, deadline=1e12)
    )
    assert isinstance(result, Refusal) and result.reason == "robots"
    assert sender.paths() == []


async def test_per_page_request_and_byte_caps() -> None:
    sender = FakeSender({"http://site.test/a.js": ok(b"x" * 60), "http://site.test/b.js": ok(b"y" * 60)})
    g = guard(sender, max_requests_per_page=2, max_resource_bytes_per_page=100)
    budget = g.budget(timeout_s=5)
    assert isinstance(await g.fetch(sub("http://site.test/a.js"), budget), Fetched)
    over = await g.fetch(sub("http://site.test/b.js"), budget)
    assert isinstance(over, Refusal) and over.reason == "bytes"
    capped = await g.fetch(sub("http://site.test/a.js"), budget)
    assert isinstance(capped, Refusal) and capped.reason == "requests"


async def test_a_host_busy_past_the_wait_cap_refuses_instead_of_waiting() -> None:
    started = asyncio.Event()
    sender = FakeSender({"http://site.test/slow.js": slow(0.5, started), "http://site.test/next.js": ok()})
    g = guard(sender, per_host_concurrency=1, request_wait_cap_s=0.05)
    budget = g.budget(timeout_s=5)
    await g.robots.rules_for("http://site.test/")  # robots.txt read first: its turn is not the point here
    first = asyncio.create_task(g.fetch(sub("http://site.test/slow.js"), budget))
    await asyncio.wait_for(started.wait(), 5)  # the slow request holds the host's only place
    second = await g.fetch(sub("http://site.test/next.js"), budget)
    assert isinstance(second, Refusal) and second.reason == "politeness"
    assert isinstance(await first, Fetched)


async def test_no_response_before_the_page_deadline_is_refused() -> None:
    sender = FakeSender({"http://site.test/slow.js": slow(5)})
    g = guard(sender)
    await g.robots.rules_for("http://site.test/")
    result = await g.fetch(sub("http://site.test/slow.js"), g.budget(timeout_s=0.1))
    assert isinstance(result, Refusal) and result.reason == "timeout"


async def test_network_errors_are_refusals_with_the_ingestors_reason() -> None:
    async def reset(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    sender = FakeSender({"http://site.test/x.js": reset})
    result = await guard(sender).fetch(
        sub("http://site.test/x.js"), PageBudget(requests=9, nbytes=99, deadline=1e12)
    )
    assert isinstance(result, Refusal) and result.reason == "error"
    assert "cannot connect to site.test" in result.detail


def test_fulfil_headers_drop_what_no_longer_describes_the_body() -> None:
    headers = fulfil_headers(
        [
            ("Content-Encoding", "gzip"),
            ("Content-Length", "10"),
            ("Transfer-Encoding", "chunked"),
            ("Set-Cookie", "a=b"),
            ("Link", "</a>; rel=preload"),
            ("link", "</b>; rel=preload"),
            ("Content-Security-Policy", "script-src 'self'"),
        ]
    )
    assert headers == {
        "link": "</a>; rel=preload, </b>; rel=preload",
        "content-security-policy": "script-src 'self'",
    }


def test_document_is_the_raw_page_body_at_its_final_url_with_its_charset() -> None:
    body = "<html><body>caf\u00e9</body></html>".encode("windows-1252")
    page = RawPage(
        url="http://site.test/start",
        url_hash="0" * 32,
        host="site.test",
        final_url="http://site.test/final",
        status=200,
        content_type="text/html",
        html_zstd=compress_html(body),
        content_hash="0" * 32,
        fetched_at=0.0,
        charset="windows-1252",
        redirects=["http://site.test/start"],
        response_headers=[
            ["Content-Type", "text/html"],
            ["Content-Encoding", "gzip"],
            ["X-Frame-Options", "DENY"],
        ],
    )
    doc = document_of(page)
    assert doc.url == "http://site.test/final" and doc.status == 200 and doc.body == body
    assert doc.headers == {"content-type": "text/html; charset=windows-1252", "x-frame-options": "DENY"}


def test_cap_utf8_never_cuts_inside_a_character() -> None:
    assert cap_utf8("abc", 10) == ("abc", False)
    text, cut = cap_utf8("\u00e9" * 10, 5)  # two bytes each
    assert cut and text == "\u00e9\u00e9" and len(text.encode()) <= 5
    assert cap_utf8("\u00e9" * 3, 6) == ("\u00e9" * 3, False)


async def test_shared_sub_resources_are_fetched_once_and_count_against_each_page() -> None:
    sender = FakeSender(
        {
            "http://site.test/bundle.js": ok(b"x" * 100, **{"Cache-Control": "public, max-age=3600"}),
            "http://site.test/api": ok(b"{}", **{"Cache-Control": "no-store"}),
            "http://site.test/vary": ok(b"v", Vary="Cookie"),
        }
    )
    g = guard(sender, max_resource_bytes_per_page=150)
    for _ in range(3):
        budget = g.budget(timeout_s=5)
        for url in ("http://site.test/bundle.js", "http://site.test/api", "http://site.test/vary"):
            assert isinstance(await g.fetch(sub(url), budget), Fetched)
        assert budget.fetched == 3 and budget.bytes_left == 150 - 103
        over = await g.fetch(sub("http://site.test/bundle.js"), budget)  # a cached response still costs bytes
        assert isinstance(over, Refusal)
    assert sender.paths().count("/bundle.js") == 1
    assert sender.paths().count("/api") == 3 and sender.paths().count("/vary") == 3


def test_cache_lifetime_and_byte_bound() -> None:
    now = [0.0]
    cache = ResourceCache(max_bytes=400, ttl_s=60, clock=lambda: now[0])

    def fetched(n: int, **headers: str) -> Fetched:
        return Fetched(status=200, headers={k.lower(): v for k, v in headers.items()}, body=b"x" * n, url="u")

    cache.put("a", "GET", fetched(100, **{"Cache-Control": "max-age=10"}))
    cache.put("b", "GET", fetched(100))
    cache.put("post", "POST", fetched(10))
    cache.put("big", "GET", fetched(101))  # above a quarter of the cache
    cache.put("404", "GET", Fetched(status=404, headers={}, body=b"", url="u"))
    assert [k for k in ("a", "b", "post", "big", "404") if cache.get(k)] == ["a", "b"]
    now[0] = 11
    assert cache.get("a") is None and cache.get("b") is not None  # a's own max-age; b the cache's ttl
    for key in "cdef":
        cache.put(key, "GET", fetched(100))
    assert cache.size <= 400 and cache.get("b") is None and cache.get("f") is not None  # LRU out first
