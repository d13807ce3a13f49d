"""No leaked browsers: SIGKILL of the renderer's process, orphans of a crashed run,
recycling after N pages or above the memory limit, and a clean stop."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from tests.integration.rich_site import GUARD, Site, offline_resolver, raw_page, serve_site
from workers.errors import StackError, StreamCrawlError
from workers.rich import Renderer
from workers.rich.browser import orphan_processes
from workers.settings import RendererSettings

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
CHILD = """
import asyncio, json, sys
from pathlib import Path
from tests.integration.rich_site import GUARD, offline_resolver, raw_page
from workers.rich import Renderer
from workers.settings import RendererSettings

async def main():
    async with Renderer(RendererSettings(), data_dir=Path(sys.argv[1]), ingestor=GUARD, resolver=offline_resolver()) as r:
        await r.render(raw_page(sys.argv[2]))
        print(json.dumps(r.browser_pids()), flush=True)
        await asyncio.Event().wait()

asyncio.run(main())
"""


@pytest.fixture(scope="module")
async def base() -> AsyncIterator[str]:
    site: Site
    async with serve_site() as site:
        yield site.base()


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _still_alive(pids: list[int], timeout_s: float = 5.0) -> list[int]:
    """The PIDs still running (zombies count as dead) after waiting up to ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while (alive := [p for p in pids if _alive(p)]) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


async def _wait_dead(pids: list[int], timeout_s: float = 5.0) -> list[int]:
    return await asyncio.to_thread(_still_alive, pids, timeout_s)


def _spawn_child(data_dir: Path, url: str) -> subprocess.Popen[str]:
    """A process that renders ``url`` with a Renderer, prints the browser's PIDs, then idles."""
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data_dir), url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def _spawn_orphan(chromium: Path, profile: Path) -> subprocess.Popen[bytes]:
    """A Chromium on ``profile`` with no parent-death signal, in its own session: it survives
    anything but a kill, like the browser of a renderer that crashed without it."""
    return subprocess.Popen(
        [
            str(chromium),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


async def test_sigkilled_renderer_leaves_no_chromium(tmp_path: Path, base: str) -> None:
    child = _spawn_child(tmp_path, f"{base}/late.html")
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 60)
        old = json.loads(line)
        assert len(old) >= 3  # browser, zygotes, renderers, utilities
        child.kill()
        child.wait()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    async with Renderer(
        RendererSettings(), data_dir=tmp_path, ingestor=GUARD, resolver=offline_resolver()
    ) as renderer:
        assert await _wait_dead(old) == []
        assert renderer.browser_pids()[0] not in old
        rendered = await renderer.render(raw_page(f"{base}/late.html"))
        assert "Late content" in rendered.markdown
        profile = tmp_path / "browser-0" / "profile"
        assert {p.pid for p in orphan_processes(profile)} <= set(renderer.browser_pids())


async def test_orphans_of_a_crashed_run_are_killed_at_start(tmp_path: Path) -> None:
    profile = tmp_path / "browser-0" / "profile"
    profile.mkdir(parents=True)
    settings = RendererSettings()
    orphan = _spawn_orphan(settings.chromium_path, profile)
    try:
        deadline = time.monotonic() + 30
        while not (profile / "DevToolsActivePort").exists():
            assert time.monotonic() < deadline and orphan.poll() is None
            await asyncio.sleep(0.05)
        tree = [orphan.pid, *(c.pid for c in psutil.Process(orphan.pid).children(recursive=True))]
        async with Renderer(settings, data_dir=tmp_path) as renderer:
            assert await asyncio.to_thread(orphan.wait, 5) is not None
            assert await _wait_dead(tree) == []
            assert not set(tree) & set(renderer.browser_pids())
    finally:
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()


async def test_browser_recycled_after_n_pages(tmp_path: Path, base: str) -> None:
    settings = RendererSettings(recycle_after_pages=2)
    async with Renderer(settings, data_dir=tmp_path, ingestor=GUARD, resolver=offline_resolver()) as renderer:
        first = renderer.browser_pids()
        for _ in range(2):
            await renderer.render(raw_page(f"{base}/late.html"))
        rendered = await renderer.render(raw_page(f"{base}/late.html"))  # waits for the restart
        assert "Late content" in rendered.markdown
        assert renderer.stats.browser_restarts == 1
        assert renderer.browser_pids()[0] != first[0]
        assert await _wait_dead(first) == []


async def test_browser_recycled_above_memory_limit(tmp_path: Path, base: str) -> None:
    settings = RendererSettings(max_browser_rss_mb=1)
    async with Renderer(settings, data_dir=tmp_path, memory_check_interval_s=0.3) as renderer:
        first = renderer.browser_pids()[0]
        deadline = time.monotonic() + 30
        while renderer.stats.browser_restarts == 0:
            assert time.monotonic() < deadline, "no restart above the memory limit"
            await asyncio.sleep(0.1)
        assert renderer.stats.chromium_peak_rss_bytes > 2**20
        assert not _alive(first) or await _wait_dead([first]) == []


async def test_stop_leaves_no_browser_and_no_driver(tmp_path: Path) -> None:
    me = psutil.Process()
    before = {c.pid for c in me.children(recursive=True)}
    async with Renderer(RendererSettings(), data_dir=tmp_path) as renderer:
        pids = renderer.browser_pids()
        during = {c.pid for c in me.children(recursive=True)} - before
        assert set(pids) <= during
    assert await _wait_dead(sorted(during)) == []
    assert orphan_processes(tmp_path / "browser-0" / "profile") == []
    assert not (tmp_path / "browser-0" / "chromium.pid").exists()


async def test_stop_fails_queued_and_in_flight_renders_instead_of_hanging(tmp_path: Path, base: str) -> None:
    settings = RendererSettings(page_timeout_s=30)
    renderer = Renderer(settings, data_dir=tmp_path, ingestor=GUARD, resolver=offline_resolver())
    await renderer.start()
    tasks = [
        asyncio.create_task(renderer.render(raw_page(f"{base}/hang.html")))
        for _ in range(settings.concurrency * 2)
    ]
    await asyncio.sleep(1.0)
    started = time.monotonic()
    await renderer.stop(drain_timeout_s=0.5)
    results = await asyncio.wait_for(asyncio.gather(*tasks, return_exceptions=True), 15)
    assert time.monotonic() - started < 15
    assert all(isinstance(r, StreamCrawlError) for r in results), results
    with pytest.raises(StackError):
        await renderer.render(raw_page(f"{base}/late.html"))
