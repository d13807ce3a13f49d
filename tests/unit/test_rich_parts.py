"""Rich renderer parts that need no browser: resolver rules, error mapping, DOM content,
profile slots, the orphan killer, the start-up checks and the output record's size caps."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from bench.offline import fetched_page
from workers.errors import (
    BlockedError,
    ConfigError,
    ExtractionError,
    PermanentFetchError,
    RenderTimeout,
    StackError,
    TransientFetchError,
)
from workers.messages import CrawlContext, ProcessedPage, RawPage, RoutedPage, decode
from workers.rich import Rendered, Renderer
from workers.rich.browser import ProfileSlot, kill_orphans, resolver_rules
from workers.rich.content import page_content
from workers.rich.failures import classify, failure_reason, short, status_error
from workers.rich.memory import tree_memory
from workers.rich_renderer.record import RECORD_LIMIT, encode_fitting, rendered_page
from workers.settings import ExtractorSettings, RendererSettings


def test_resolver_rules_keep_order_and_reject_injection() -> None:
    rules = resolver_rules({"*.demo.test": "127.0.0.1", "*": "~NOTFOUND"})
    assert rules == "MAP *.demo.test 127.0.0.1, MAP * ~NOTFOUND"
    assert resolver_rules({}) is None
    assert resolver_rules(None) is None
    with pytest.raises(ConfigError):
        resolver_rules({"a.test": "127.0.0.1, MAP * 10.0.0.1"})


@pytest.mark.parametrize(
    ("message", "alive", "error", "reason"),
    [
        ("Page.goto: Page crashed\nCall log:\n  - navigating", True, TransientFetchError, "tab_crash"),
        ("Target page, context or browser has been closed", True, TransientFetchError, "browser_crash"),
        ("anything at all", False, TransientFetchError, "browser_crash"),
        ("Page.goto: Timeout 20000ms exceeded.", True, RenderTimeout, "timeout"),
        ("Page.goto: net::ERR_NAME_NOT_RESOLVED at http://x.test/", True, PermanentFetchError, "navigation"),
        ("Page.goto: net::ERR_CONNECTION_RESET at http://x.test/", True, TransientFetchError, "navigation"),
        ("Page.goto: Download is starting", True, ExtractionError, "navigation"),
        ("Protocol error (Runtime.callFunctionOn): boom", True, TransientFetchError, "other"),
    ],
)
def test_classify_browser_errors(message: str, alive: bool, error: type[Exception], reason: str) -> None:
    exc = classify(RuntimeError(message), "http://x.test/", browser_alive=alive)
    assert type(exc) is error
    assert failure_reason(exc) == reason
    assert "Call log" not in str(exc)


def test_status_errors() -> None:
    assert status_error(200, "u") is None
    assert status_error(None, "u") is None
    assert isinstance(status_error(503, "u"), TransientFetchError)
    assert isinstance(status_error(429, "u"), TransientFetchError)
    not_found = status_error(404, "u")
    assert isinstance(not_found, PermanentFetchError) and not_found.status == 404


def test_short_drops_playwright_call_log() -> None:
    assert short(RuntimeError("Page.goto: boom\nCall log:\n  - navigating to x")) == "Page.goto: boom"


def test_page_content_from_rendered_dom() -> None:
    html = """<!doctype html><html lang="en"><head><title> TodoMVC:  React </title>
    <meta name="description" content="A TodoMVC app."><script>var x = "script text";</script>
    <style>.a{}</style></head><body><section><header><h1>todos</h1>
    <input class="new-todo" placeholder="What needs to be done?"><input type="hidden" value="secret">
    <input type="submit" value="Add it"><input type="checkbox" value="on"></header>
    <p>Read <a href="/docs#top">the docs</a>, <a href="https://other.test/x">elsewhere</a>,
    <a href="mailto:a@b.test">mail</a>, <a href="/docs">again</a>.</p></section></body></html>"""
    content = page_content(html, url="http://app.demo.test/app/")
    assert content.title == "TodoMVC: React"
    assert content.description == "A TodoMVC app."
    assert content.lang == "en"
    assert content.links == ["http://app.demo.test/docs", "https://other.test/x"]
    assert content.markdown.startswith("# todos")
    for text in ("What needs to be done?", "Add it", "the docs"):
        assert text in content.markdown
    for text in ("script text", "secret", ".a{}", " on"):
        assert text not in content.markdown


def test_page_content_without_body_or_title() -> None:
    content = page_content("<html></html>", url="http://x.test/")
    assert content.title is None and content.links == []


def test_profile_slots_are_exclusive(tmp_path: Path) -> None:
    first = ProfileSlot.acquire(tmp_path)
    second = ProfileSlot.acquire(tmp_path)
    try:
        assert (first.index, second.index) == (0, 1)
        assert first.user_data_dir != second.user_data_dir
    finally:
        first.release()
        second.release()
    again = ProfileSlot.acquire(tmp_path)
    assert again.index == 0
    again.release()


@pytest.fixture
def sleepers(tmp_path: Path) -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Processes that merely *look* like browsers of various profiles (argv only)."""
    ours = tmp_path / "browser-0" / "profile"
    argvs = {
        "ours": f"--user-data-dir={ours}",
        "prefix": f"--user-data-dir={ours}-other",
        "elsewhere": f"--user-data-dir={tmp_path / 'elsewhere'}",
    }
    procs = {
        name: subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", arg])
        for name, arg in argvs.items()
    }
    yield procs
    for proc in procs.values():
        proc.kill()
        proc.wait()


def _gone(proc: subprocess.Popen[bytes]) -> bool:
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        return False
    return True


def test_kill_orphans_matches_the_exact_profile_only(
    tmp_path: Path, sleepers: dict[str, subprocess.Popen[bytes]]
) -> None:
    profile = tmp_path / "browser-0" / "profile"
    time.sleep(0.2)  # let the interpreters start
    killed = kill_orphans(profile)
    assert killed == [sleepers["ours"].pid]
    assert _gone(sleepers["ours"])
    assert sleepers["prefix"].poll() is None
    assert sleepers["elsewhere"].poll() is None


def test_acquiring_a_free_slot_kills_its_orphans(
    tmp_path: Path, sleepers: dict[str, subprocess.Popen[bytes]]
) -> None:
    time.sleep(0.2)
    slot = ProfileSlot.acquire(tmp_path)
    try:
        assert slot.index == 0
        assert _gone(sleepers["ours"])
        assert sleepers["prefix"].poll() is None
    finally:
        slot.release()


def test_tree_memory_of_this_process() -> None:
    memory = tree_memory(os.getpid())
    assert memory.processes >= 1
    assert 0 < memory.pss_bytes <= memory.rss_bytes * 1.01
    assert tree_memory(2**22 + 12345).processes == 0  # no such process
    assert psutil.pid_exists(os.getpid())


def _raw(url: str, body: bytes = b"<html><body>hi</body></html>") -> RawPage:
    return fetched_page(url, body)


async def test_renderer_refuses_before_start_and_non_http(tmp_path: Path) -> None:
    renderer = Renderer(RendererSettings(), data_dir=tmp_path)
    with pytest.raises(BlockedError):
        await renderer.render(_raw("file:///etc/passwd"))
    with pytest.raises(BlockedError):
        await renderer.render(_raw("chrome://crash"))
    with pytest.raises(StackError):
        await renderer.render(_raw("http://x.test/"))


async def test_missing_chromium_says_how_to_install(tmp_path: Path) -> None:
    settings = RendererSettings(chromium_path=tmp_path / "no-chromium")
    with pytest.raises(ConfigError, match="apt-get install -y chromium"):
        async with Renderer(settings, data_dir=tmp_path):
            pass


def _rendered(html: str, *, truncated: bool = False) -> Rendered:
    content = page_content(html, url="http://x.test/")
    return Rendered(
        html=html,
        markdown=content.markdown,
        title=content.title,
        description=None,
        lang=None,
        links=content.links,
        status=200,
        elapsed_s=0.1,
        final_url="http://x.test/",
        truncated=truncated,
    )


def test_rendered_page_caps_markdown_flags_parts_and_carries_the_context() -> None:
    raw = dataclasses.replace(
        _raw("http://x.test/"),
        truncated=True,
        ctx=CrawlContext(depth=2, seed="x.test"),
        request_id="req-1",
        peer_ip="127.0.0.1",
        response_headers=[["Content-Type", "text/html"]],
    )
    html = "<html><body>" + "<p>Words and more words in a long page.</p>" * 2000 + "</body></html>"
    routed = RoutedPage(page=raw, route="rich", score=10, rules=["empty_root"])
    processed = rendered_page(
        routed, _rendered(html, truncated=True), settings=ExtractorSettings(max_markdown_bytes=10_000)
    )
    assert len(processed.markdown.encode()) <= 10_000
    assert processed.truncated and sorted(processed.truncated_parts) == ["markdown", "raw", "rendered"]
    assert processed.ctx == raw.ctx and processed.request_id == "req-1" and processed.peer_ip == "127.0.0.1"
    assert processed.response_headers == raw.response_headers and processed.route == "rich"
    small = rendered_page(
        routed,
        _rendered("<html><body><p>short</p></body></html>"),
        settings=ExtractorSettings(max_markdown_bytes=10_000),
    )
    assert small.truncated_parts == ["raw"]


def test_encode_fitting_drops_the_dom_then_cuts_markdown_then_outlinks() -> None:
    links = [f"http://x.test/{n:06d}" for n in range(20_000)]
    html = (
        "<html><body>"
        + "".join(f'<a href="{u}">link {n}</a> ' for n, u in enumerate(links))
        + "</body></html>"
    )
    routed = RoutedPage(page=_raw("http://x.test/"), route="rich", score=0)
    processed = rendered_page(routed, _rendered(html), settings=ExtractorSettings(max_markdown_bytes=10**7))
    value, same = encode_fitting(processed)
    assert same is processed and len(value) <= RECORD_LIMIT
    for limit in (400_000, 200_000, 50_000):
        value, fitted = encode_fitting(processed, limit=limit)
        assert len(value) <= limit
        assert decode(value, ProcessedPage).truncated_parts == fitted.truncated_parts
        assert fitted.rendered_html_zstd is None and "rendered" in fitted.truncated_parts
    assert "outlinks" in fitted.truncated_parts and len(fitted.outlinks) < len(links)
    with pytest.raises(ExtractionError, match="record limit"):
        encode_fitting(processed, limit=100)


def test_rendered_page_reuses_the_renderers_parse_of_an_app(monkeypatch: pytest.MonkeyPatch) -> None:
    html = '<html><body><input placeholder="What needs to be done?"><p>An app.</p></body></html>'
    routed = RoutedPage(page=_raw("http://x.test/"), route="rich", score=10, rules=["empty_root"])
    content = page_content(html, url="http://x.test/")
    rendered = dataclasses.replace(_rendered(html), text=content.text)
    expected = rendered_page(routed, dataclasses.replace(rendered, text=None))  # parses the DOM again

    def no_second_parse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the rendered body was parsed a second time")

    monkeypatch.setattr("workers.rich_renderer.record.page_content", no_second_parse)
    processed = rendered_page(routed, rendered)
    assert processed.markdown == expected.markdown and processed.text == expected.text
    assert "What needs to be done?" in processed.text and processed.quality["method"] == "rendered-body"
