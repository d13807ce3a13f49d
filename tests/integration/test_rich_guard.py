"""The browser keeps the ingestor's rules: real Chromium, an allowed origin, a canary it must never reach.

The origin is on 127.0.0.1 (``allowed_networks=["127.0.0.1/32"]``); the canary is on
127.0.0.2, loopback like the origin but outside the allowed networks, with private
networks refused. A page attacks the canary by IP, by a DNS name the resolver maps to
it, and through redirects from the origin, every way a page can make a request; its own
app still renders. Documents are served from their RawPage: the origin never sees a GET
for them here (the pipeline test, test_rich_guard_pipeline.py, counts the ingestor's one).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Error as PlaywrightError
from playwright.async_api import async_playwright
from prometheus_client import REGISTRY

from tests.integration.guard_site import (
    AFTER_JS,
    SECRET,
    Canary,
    Origin,
    guard_ingestor,
    hostile_page,
    serve_canary,
    serve_origin,
)
from tests.integration.rich_site import raw_page
from workers.messages import RoutedPage, decode
from workers.rich import Renderer
from workers.rich.browser import ChromiumProcess, ProfileSlot
from workers.rich.isolation import Blackhole, isolation_flags
from workers.rich_renderer.record import RECORD_LIMIT, encode_fitting, rendered_page
from workers.settings import ExtractorSettings, RendererSettings

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# Images go through the guard here (they are not loaded by default) so that <img> is attacked too.
SETTINGS = RendererSettings(
    page_timeout_s=10.0,
    settle_timeout_s=2.0,
    blocked_resource_types=["media", "font", "eventsource"],
)


@pytest.fixture(scope="module")
async def canary() -> AsyncIterator[Canary]:
    async with serve_canary() as served:
        yield served


@pytest.fixture(scope="module")
async def origin() -> AsyncIterator[Origin]:
    async with serve_origin() as served:
        yield served


@pytest.fixture(scope="module")
async def renderer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Renderer]:
    async with Renderer(SETTINGS, data_dir=tmp_path_factory.mktemp("guard"), ingestor=guard_ingestor()) as r:
        yield r


def _targets(canary: Canary, origin: Origin) -> list[str]:
    name = f"http://rebind.guard.test:{canary.http_port}"
    return [
        canary.base,  # by IP
        name,  # a name the resolver maps to the canary
        origin.url(f"/go?to={canary.base}/redirected"),  # a redirect from the allowed origin
        origin.url(f"/go?to={name}/redirected"),
    ]


async def test_page_cannot_reach_the_canary_and_its_app_still_renders(
    renderer: Renderer, canary: Canary, origin: Origin
) -> None:
    before = canary.hits
    html = hostile_page(_targets(canary, origin), stun=f"stun:127.0.0.2:{canary.udp_port}")
    url = origin.url("/hostile.html")
    rendered = await renderer.render(raw_page(url, html.encode()))
    assert canary.hits == before == 0, (canary.requests, canary.datagrams)
    assert origin.gets("/hostile.html") == 0  # the document came from the RawPage
    assert origin.gets("/app.js") == 1 and origin.gets("/data.json") == 1 and origin.gets("/more.json") == 1
    assert AFTER_JS in rendered.markdown and "loaded by XHR" in rendered.markdown
    assert SECRET not in rendered.html
    for n in range(4):  # by IP, by name, by redirect to each
        for blocked in (
            f"fetch{n} blocked",
            f"xhr{n} blocked",
            f"worker{n} blocked",
        ):  # workers are guarded too
            assert blocked in rendered.markdown, rendered.markdown[-800:]
    assert "post0 blocked" in rendered.markdown and "post1 blocked" in rendered.markdown
    assert rendered.refused.get("ssrf", 0) >= 20, rendered.refused
    assert rendered.refused.get("type", 0) >= 4, rendered.refused  # video, fonts
    assert (REGISTRY.get_sample_value("renderer_requests_total", {"outcome": "ssrf"}) or 0) >= 20
    # What the interception cannot see met the blackhole proxy, never the network.
    assert not any(SECRET in line for line in renderer.blackhole.lines)


NAVIGATIONS = {
    "location": '<script>setTimeout(() => { location.href = "{canary}/navigate"; }, 10);</script>',
    "meta-refresh": '<meta http-equiv="refresh" content="0; url={canary}/refresh">',
    "form": '<form id="f" action="{canary}/form" method="post"><input name="a" value="b"></form>'
    '<script>document.getElementById("f").submit();</script>',
    "same-origin": '<script>setTimeout(() => { location.href = "/elsewhere.html"; }, 10);</script>',
    "reload": "<script>setTimeout(() => location.reload(), 10);</script>",
}


@pytest.mark.parametrize("how", list(NAVIGATIONS))
async def test_navigating_away_is_refused_and_the_page_stays(
    renderer: Renderer, canary: Canary, origin: Origin, how: str
) -> None:
    before = canary.hits
    attempt = NAVIGATIONS[how].replace("{canary}", canary.base)
    page = f"""<!doctype html><html><head><title>Stays</title></head><body>
    <p>{"The page stays on the document we fetched. " * 8}</p>{attempt}</body></html>"""
    path = f"/stays-{how}.html"
    rendered = await renderer.render(raw_page(origin.url(path), page.encode()))
    assert canary.hits == before, canary.requests
    assert origin.gets("/elsewhere.html") == 0 and origin.gets(path) == 0
    assert "The page stays" in rendered.markdown
    assert rendered.refused == {"navigation": 1}, rendered.refused


async def test_websockets_popups_and_service_workers_are_refused(
    renderer: Renderer, canary: Canary, origin: Origin
) -> None:
    before = canary.hits
    page = f"""<!doctype html><html><head><title>Refused</title></head><body>
    <p>{"A page that tries to open a socket, a popup and a worker. " * 6}</p><div id="out"></div>
    <script>
    const out = (t) => document.getElementById("out").insertAdjacentHTML("beforeend", "<p>" + t + "</p>");
    const ws = new WebSocket("ws://127.0.0.2:{canary.http_port}/ws");
    ws.onclose = (e) => out("websocket closed " + e.code);
    out("popup " + String(window.open("{canary.base}/popup")));
    navigator.serviceWorker.register("/sw.js").then(() => out("sw registered"), () => out("sw refused"));
    </script></body></html>"""
    # At 127.0.0.1 the page is a secure context, so it has navigator.serviceWorker to try.
    rendered = await renderer.render(raw_page(origin.url("/refused.html", host="127.0.0.1"), page.encode()))
    assert canary.hits == before, canary.requests
    assert origin.gets("/sw.js") == 0
    assert "websocket closed 1008" in rendered.markdown
    assert "popup null" in rendered.markdown and "sw refused" in rendered.markdown
    assert (REGISTRY.get_sample_value("renderer_requests_total", {"outcome": "websocket"}) or 0) >= 1


async def test_robots_txt_applies_to_sub_resources(renderer: Renderer, origin: Origin) -> None:
    page = f"""<!doctype html><html><head><title>Robots</title></head><body>
    <p>{"Words of a page that asks for a disallowed path. " * 8}</p><div id="out"></div>
    <script>fetch("/private/data.json").then(() => out.textContent = "fetched", () => out.textContent = "robots said no");
    </script></body></html>"""
    rendered = await renderer.render(raw_page(origin.url("/robots-page.html"), page.encode()))
    assert "robots said no" in rendered.markdown
    assert rendered.refused.get("robots") == 1
    assert not any(path.startswith("/private/") for _, path in origin.requests)
    assert origin.gets("/robots.txt") == 1  # read once, cached for the origin


async def test_every_request_carries_our_user_agent(renderer: Renderer, origin: Origin) -> None:
    page = """<!doctype html><html><head><title>UA</title></head><body><p id="ua"></p>
    <p>Plenty of words on this page so it is a page. Plenty of words on this page so it is a page.</p>
    <script>document.getElementById("ua").textContent = navigator.userAgent;</script></body></html>"""
    rendered = await renderer.render(raw_page(origin.url("/ua.html"), page.encode()))
    assert renderer.user_agent in rendered.markdown
    assert renderer.user_agent.startswith("StreamCrawl/") and "(+https://" in renderer.user_agent


async def test_huge_dom_is_truncated_flagged_and_fits_a_record(tmp_path: Path, origin: Origin) -> None:
    settings = RendererSettings(page_timeout_s=20.0, max_rendered_bytes=1_000_000)
    limits = ExtractorSettings(max_markdown_bytes=200_000)
    page = f"""<!doctype html><html><head><title>Huge</title></head><body><div id="root"></div>
    <p>{"A page whose script builds a very large document. " * 5}</p><script>
    const root = document.getElementById("root");
    const chunk = "<p>" + "Lots and lots of generated words in one more paragraph. ".repeat(20) + "</p>";
    root.innerHTML = chunk.repeat(3000);
    </script></body></html>"""
    raw = raw_page(origin.url("/huge.html"), page.encode())
    async with Renderer(settings, data_dir=tmp_path, ingestor=guard_ingestor()) as renderer:
        rendered = await renderer.render(raw)
    assert rendered.truncated
    assert len(rendered.html.encode()) <= settings.max_rendered_bytes
    processed = rendered_page(RoutedPage(page=raw, route="rich", score=0), rendered, settings=limits)
    assert processed.truncated and {"rendered", "markdown"} <= set(processed.truncated_parts)
    assert len(processed.markdown.encode()) <= limits.max_markdown_bytes
    value, fitted = encode_fitting(processed)
    assert len(value) <= RECORD_LIMIT and fitted == processed
    # A tighter record limit: the rendered DOM goes first, then the Markdown is cut.
    small, shrunk = encode_fitting(processed, limit=100_000)
    assert len(small) <= 100_000
    assert shrunk.rendered_html_zstd is None and shrunk.markdown and shrunk.markdown != processed.markdown
    assert decode(small, type(processed)).truncated_parts == shrunk.truncated_parts


async def test_a_browser_without_the_guard_still_cannot_reach_the_network(
    tmp_path: Path, canary: Canary
) -> None:
    """Belt and braces, alone: our Chromium flags with no interception at all."""
    before = canary.hits
    blackhole = Blackhole()
    port = await blackhole.start()
    slot = ProfileSlot.acquire(tmp_path)
    chromium = ChromiumProcess(executable=SETTINGS.chromium_path, slot=slot, extra_args=isolation_flags(port))
    try:
        cdp = await chromium.start()
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(cdp)
            context = await browser.new_context()
            page = await context.new_page()
            for url in (f"{canary.base}/direct", f"http://rebind.guard.test:{canary.http_port}/by-name"):
                with pytest.raises(PlaywrightError):
                    await page.goto(url, timeout=10_000)
            # A fresh page: the refused navigations may still be loading Chromium's error page,
            # which would destroy set_content's execution context.
            page = await context.new_page()
            await page.set_content(
                f"""<script>window.pc = new RTCPeerConnection({{iceServers: [{{urls: "stun:127.0.0.2:{canary.udp_port}"}}]}});
                pc.createDataChannel("d"); pc.createOffer().then((o) => pc.setLocalDescription(o));</script>"""
            )
            # ICE gathering done: every STUN request WebRTC was going to send has been tried.
            await page.wait_for_function("window.pc.iceGatheringState === 'complete'", timeout=15_000)
            await browser.close()
    finally:
        await chromium.stop()
        slot.release()
        await blackhole.stop()
    assert canary.hits == before, (canary.requests, canary.datagrams)
    assert any(f"127.0.0.2:{canary.http_port}/direct" in line for line in blackhole.lines), blackhole.lines


async def test_concurrent_first_pages_of_a_new_browser_are_all_served_by_the_guard(
    tmp_path: Path, origin: Origin
) -> None:
    """Tabs created while the routes were being registered once escaped the interception."""
    page = f"""<!doctype html><html><head><title>App</title><script src="/app.js" defer></script></head>
    <body><div id="root"></div><p>{"Words of one of several pages rendered at once. " * 6}</p></body></html>"""
    # The settle cap is the page's budget, not the default 3 s. In a full clean-clone run on a
    # 2-core machine, a page once came back without the script's text (not reproduced
    # alone or under load since), which is what a capped wait gives: the DOM as it is then.
    # The wait ends when the page is quiet, so a wide cap costs nothing on a fast machine;
    # the assertion shows the captured Markdown if it happens again.
    settings = RendererSettings(page_timeout_s=20.0, settle_timeout_s=15.0, concurrency=4)
    async with Renderer(settings, data_dir=tmp_path, ingestor=guard_ingestor()) as renderer:
        pages = [raw_page(origin.url(f"/at-once-{n}.html"), page.encode()) for n in range(4)]
        results = await asyncio.gather(*(renderer.render(p) for p in pages))
        # Any of the pages' requests (document, script, its fetches), not Chromium's own
        # background traffic, which the blackhole also sees.
        escaped = [line for line in renderer.blackhole.lines if f":{origin.port}/" in line]
    assert escaped == []  # no tab's request reached the network outside the guard
    assert all(AFTER_JS in r.markdown for r in results), [r.markdown[:300] for r in results]
