"""The rich renderer against real Chromium on a loopback site: SPAs, late content, static
pages, a page that never loads, a tab that crashes, a browser that dies, sub-resource errors.

Every document is served from its RawPage (the site never sees a GET for it); the
sub-resources come through the guard. One Renderer serves the whole module (a browser
start costs seconds on 2 shared cores).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest
from prometheus_client import REGISTRY

from bench.quality import text_f1
from tests.integration.rich_site import DATA, GUARD, Site, csr_apps, offline_resolver, raw_page, serve_site
from workers.errors import RenderTimeout, TransientFetchError
from workers.rich import Renderer
from workers.rich.content import page_content
from workers.settings import RendererSettings

pytestmark = [pytest.mark.integration, pytest.mark.browser]

SETTINGS = RendererSettings(page_timeout_s=6.0, settle_timeout_s=3.0, recycle_after_pages=1000)
STATIC_PAGES = ["001", "wikipedia", "mozilla-1"]


@pytest.fixture(scope="module")
async def site() -> AsyncIterator[Site]:
    async with serve_site() as served:
        yield served


@pytest.fixture(scope="module")
def base(site: Site) -> str:
    return site.base()


@pytest.fixture(scope="module")
async def renderer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Renderer]:
    data_dir = tmp_path_factory.mktemp("rich")
    async with Renderer(SETTINGS, data_dir=data_dir, ingestor=GUARD, resolver=offline_resolver()) as r:
        yield r


@pytest.mark.parametrize(("path", "expected"), csr_apps(), ids=[p.split("/")[0] for p, _ in csr_apps()])
async def test_client_rendered_apps_show_their_text(
    renderer: Renderer, base: str, path: str, expected: list[str]
) -> None:
    static_html = (DATA / "spa/todomvc/examples" / path).read_text()
    rendered = await renderer.render(raw_page(f"{base}/spa/{path}"))
    assert rendered.status == 200
    assert rendered.requests >= 1 and not rendered.refused, rendered.refused  # its own scripts
    assert rendered.title and "TodoMVC" in rendered.title
    static = page_content(static_html, url=base).markdown.casefold()
    for text in expected:
        # Case-insensitive: Angular's heading reads "Todos" (the manifest's "todos" was
        # found in its DOM dump, markup included).
        assert text.casefold() in rendered.markdown.casefold(), (text, rendered.markdown[:300])
        assert text.casefold() not in static


@pytest.mark.parametrize("app", ["lit", "web-components"])
async def test_shadow_dom_apps_are_flattened(renderer: Renderer, base: str, app: str) -> None:
    rendered = await renderer.render(raw_page(f"{base}/spa/{app}/dist/index.html"))
    assert "What needs to be done?" in rendered.markdown
    assert "<template" not in rendered.html


async def test_content_injected_after_load_is_captured(renderer: Renderer, base: str) -> None:
    rendered = await renderer.render(raw_page(f"{base}/late.html"))
    assert "Injected by a timer after load." in rendered.markdown
    assert "Loaded by a slow fetch after load." in rendered.markdown
    assert rendered.elapsed_s < SETTINGS.settle_timeout_s + 2


@pytest.mark.parametrize("name", STATIC_PAGES)
async def test_static_page_renders_to_its_static_text(renderer: Renderer, base: str, name: str) -> None:
    source = DATA / "readability/test/test-pages" / name / "source.html"
    url = f"{base}/static/{name}/source.html"
    rendered = await renderer.render(raw_page(url))
    static = page_content(source.read_text(), url=url)
    assert text_f1(rendered.markdown, static.markdown) >= 0.95
    assert rendered.title == static.title
    assert set(static.links) - set(rendered.links) == set()


async def test_page_that_never_loads_times_out_and_renderer_keeps_serving(
    renderer: Renderer, base: str
) -> None:
    started = time.monotonic()
    with pytest.raises(RenderTimeout):
        await renderer.render(raw_page(f"{base}/hang.html"))
    assert time.monotonic() - started < SETTINGS.page_timeout_s + 3
    rendered = await renderer.render(raw_page(f"{base}/late.html"))
    assert "Late content" in rendered.markdown


async def test_tab_crash_does_not_take_the_renderer_down(renderer: Renderer, base: str) -> None:
    browser = renderer.browser_pids()[0]
    with pytest.raises(TransientFetchError, match="crash"):
        await renderer.render(raw_page(f"{base}/oom.html"))
    rendered = await renderer.render(raw_page(f"{base}/late.html"))
    assert "Late content" in rendered.markdown
    assert renderer.browser_pids()[0] == browser  # the browser survived the tab


async def test_failing_sub_resources_do_not_fail_the_page(renderer: Renderer, base: str) -> None:
    html = f"""<!doctype html><html><head><title>Errors</title>
    <script src="/status/404"></script><script src="/status/503"></script>
    <script src="http://10.0.0.1/x.js"></script></head>
    <body><p>{"Words of a page whose scripts all fail. " * 10}</p><div id="out"></div>
    <script>fetch("/status/500").then((r) => {{ out.textContent = "fetch said " + r.status; }});</script>
    </body></html>"""
    rendered = await renderer.render(raw_page(f"{base}/errors.html", html.encode()))
    assert "fetch said 500" in rendered.markdown
    assert rendered.refused.get("ssrf") == 1, rendered.refused


def test_documents_are_never_fetched(site: Site) -> None:
    """Every page above was served from its RawPage: the site saw its sub-resources only."""
    documents = {"/late.html", "/hang.html", "/oom.html", "/errors.html"}
    documents |= {f"/spa/{path}" for path, _ in csr_apps()}
    documents |= {f"/static/{name}/source.html" for name in STATIC_PAGES}
    assert len(site.requests) > 10
    assert [path for _, path in site.requests if path in documents] == []


async def test_dead_browser_is_restarted(renderer: Renderer, base: str) -> None:
    old = renderer.browser_pids()
    restarts = renderer.stats.browser_restarts
    os.kill(old[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        try:
            rendered = await renderer.render(raw_page(f"{base}/late.html"))
            break
        except TransientFetchError:
            assert time.monotonic() < deadline, "the renderer did not come back"
    assert "Late content" in rendered.markdown
    assert renderer.stats.browser_restarts == restarts + 1
    assert renderer.browser_pids()[0] != old[0]
    survivors = [
        p for p in old if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
    ]
    assert survivors == []


def test_metrics_count_pages(renderer: Renderer) -> None:
    assert renderer.stats.pages_rendered >= len(csr_apps())
    assert (REGISTRY.get_sample_value("renderer_pages_rendered_total") or 0) >= renderer.stats.pages_rendered
    assert (REGISTRY.get_sample_value("renderer_render_failures_total", {"reason": "timeout"}) or 0) >= 1
    assert (REGISTRY.get_sample_value("renderer_render_seconds_count") or 0) >= 1


def test_data_dir_layout(renderer: Renderer) -> None:
    root = renderer.data_dir
    assert (root / "browser-0" / "profile").is_dir()
    assert (root / "browser-0" / "chromium.pid").is_file()
    assert Path(os.environ["CRAWL4_AI_BASE_DIRECTORY"]).is_dir()
