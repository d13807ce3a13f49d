"""Rich renderer parts that need no browser: resolver rules, error mapping, DOM content,
profile slots, the orphan killer and the start-up checks."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from workers.errors import (
    BlockedError,
    ConfigError,
    ExtractionError,
    PermanentFetchError,
    RenderTimeout,
    StackError,
    TransientFetchError,
)
from workers.messages import RawPage, compress_html
from workers.rich import Renderer
from workers.rich.browser import ProfileSlot, kill_orphans, resolver_rules
from workers.rich.content import page_content
from workers.rich.failures import classify, failure_reason, short, status_error
from workers.rich.memory import tree_memory
from workers.settings import RendererSettings


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
    return RawPage(
        url=url,
        url_hash="0" * 32,
        host="x.test",
        final_url=url,
        status=200,
        content_type="text/html",
        html_zstd=compress_html(body),
        content_hash="0" * 32,
        fetched_at=0.0,
    )


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
