"""Rich renderer: pages/s and Chromium memory, next to plain Playwright in the same run.

A separate process serves, with aiohttp on 127.0.0.1, the 11 TodoMVC apps of
``../shared/data/spa/todomvc`` and real article pages of ``../shared/data/readability``
under ``*.bench.test`` (mapped to 127.0.0.1 by the guard's resolver overrides on our side
and by Chromium's ``--host-resolver-rules`` on the baseline's; every other host is
unresolvable or refused, so nothing leaves the machine). Both sides get the same URLs,
the same Chromium (``RendererSettings.chromium_path``) with the same base flags and the
same number of pages at once (``RendererSettings.concurrency``, default 4), in
alternating runs after a warm-up:

- StreamCrawl: ``Renderer.render(raw_page)`` → ``Rendered`` (Crawl4AI over CDP, reused
  tabs, the document served from the RawPage the ingestor fetched, every sub-resource
  fetched by the guard: SSRF check, robots.txt, politeness, our User-Agent; images,
  media and fonts not loaded, as configured by default; DOMContentLoaded + settle wait,
  DOM capture with shadow roots flattened, Markdown, metadata and outlinks). The RawPages
  are built from the served files before the clock starts: fetching documents is the
  ingestor's work;
- baseline: plain Playwright, ``chromium.launch(executable_path=...)``, one context with
  ``concurrency`` reused pages, ``page.goto(wait_until="load")`` + ``page.content()``,
  Chromium fetching everything itself (the document from loopback, ~1 ms).

Reported: median pages/s, Python CPU seconds per page, peak memory of Chromium's process
tree (PSS, sampled every second: pages shared between Chromium's processes counted once;
the plain RSS sum, which counts them once per process, is in the note).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from bench.offline import OverridesOnly, fetched_page
from workers.errors import StreamCrawlError
from workers.messages import RawPage
from workers.rich import Renderer
from workers.rich.browser import BASE_FLAGS, resolver_rules
from workers.rich.memory import TreeMemory, tree_memory
from workers.settings import IngestorSettings, RendererSettings
from workers.stack.process import default_signals

__all__ = ["bench", "bench_urls"]

DATA = Path(os.environ.get("STREAMCRAWL_SHARED_DATA", "/work/shared/data"))
HOST = "site.bench.test"
RULES = {"*.bench.test": "127.0.0.1", "*": "~NOTFOUND"}
GUARD = IngestorSettings(resolve_overrides={"*.bench.test": "127.0.0.1"}, allowed_networks=["127.0.0.1/32"])
SERVER = """
import asyncio, socket, sys
from aiohttp import web
async def main():
    app = web.Application()
    app.router.add_static("/", sys.argv[1])
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    sock = socket.socket(); sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    print(sock.getsockname()[1], flush=True)
    await asyncio.Event().wait()
asyncio.run(main())
"""


def raw_page(url: str) -> RawPage:
    """The RawPage the ingestor would have fetched for a bench URL (its body read from disk)."""
    return fetched_page(url, (DATA / url.split("/", 3)[3]).read_bytes())


def bench_urls(port: int, *, articles: int) -> list[str]:
    base = f"http://{HOST}:{port}"
    apps = sorted((DATA / "spa/todomvc/examples").glob("*/dist/index.html"))
    apps += sorted((DATA / "spa/todomvc/examples").glob("*/dist/browser/index.html"))
    pages = sorted((DATA / "readability/test/test-pages").glob("*/source.html"))[:articles]
    return [f"{base}/{p.relative_to(DATA)}" for p in [*apps, *pages]]


class _Peak:
    """Samples the memory of a process tree once a second in a thread."""

    def __init__(self, pid_of: Callable[[], int | None]) -> None:
        self.pid_of = pid_of
        self.peak = TreeMemory(0, 0, 0)
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            pid = self.pid_of()
            if pid is not None:
                sample = await asyncio.to_thread(tree_memory, pid)
                if sample.pss_bytes > self.peak.pss_bytes:
                    self.peak = sample
            await asyncio.sleep(1.0)

    def __enter__(self) -> _Peak:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


async def _timed(
    urls: list[str], concurrency: int, one: Callable[[str], Awaitable[bool]]
) -> tuple[float, float, int]:
    queue: asyncio.Queue[str] = asyncio.Queue()
    for url in urls:
        queue.put_nowait(url)
    ok = 0

    async def worker() -> None:
        nonlocal ok
        while not queue.empty():
            rendered = await one(queue.get_nowait())
            ok += rendered

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu, ok


async def _ours(
    settings: RendererSettings, urls: list[str], warm: list[str], runs: int
) -> list[tuple[float, float, int, TreeMemory]]:
    out = []
    with tempfile.TemporaryDirectory(prefix="bench-rich-") as tmp:
        pages = {url: raw_page(url) for url in {*urls, *warm}}
        resolver = OverridesOnly(overrides=GUARD.resolve_overrides, allowed_networks=GUARD.allowed_networks)
        async with Renderer(settings, data_dir=Path(tmp), ingestor=GUARD, resolver=resolver) as renderer:

            async def one(url: str) -> bool:
                try:
                    rendered = await renderer.render(pages[url])
                except StreamCrawlError:
                    return False
                return bool(rendered.markdown)

            await _timed(warm, settings.concurrency, one)
            for _ in range(runs):
                with _Peak(lambda: next(iter(renderer.browser_pids()), None)) as peak:
                    wall, cpu, ok = await _timed(urls, settings.concurrency, one)
                out.append((wall, cpu, ok, peak.peak))
    return out


async def _playwright(
    settings: RendererSettings, urls: list[str], warm: list[str], runs: int
) -> list[tuple[float, float, int, TreeMemory]]:
    from playwright.async_api import Error as PlaywrightError
    from playwright.async_api import async_playwright

    rules = resolver_rules(RULES)
    out = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(
            executable_path=str(settings.chromium_path), args=[*BASE_FLAGS, f"--host-resolver-rules={rules}"]
        )
        context = await browser.new_context()
        pages: asyncio.Queue[Any] = asyncio.Queue()
        for _ in range(settings.concurrency):
            pages.put_nowait(await context.new_page())

        async def one(url: str) -> bool:
            page = await pages.get()
            try:
                await page.goto(url, wait_until="load", timeout=settings.page_timeout_s * 1000)
                return bool(await page.content())
            except PlaywrightError:
                return False
            finally:
                pages.put_nowait(page)

        def chromium_pid() -> int | None:
            for child in psutil.Process().children(recursive=True):
                try:
                    if child.name() == "chromium" and not any(
                        a.startswith("--type=") for a in child.cmdline()
                    ):
                        return child.pid
                except psutil.Error:
                    continue
            return None

        await _timed(warm, settings.concurrency, one)
        pid = chromium_pid()
        for _ in range(runs):
            with _Peak(lambda: pid) as peak:
                wall, cpu, ok = await _timed(urls, settings.concurrency, one)
            out.append((wall, cpu, ok, peak.peak))
        await browser.close()
    return out


def _serve() -> subprocess.Popen[str]:
    """The static server, in its own process so its CPU is not ours; prints its port."""
    return subprocess.Popen(
        [sys.executable, "-c", SERVER, str(DATA)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=default_signals,
    )


async def bench(*, quick: bool) -> list[dict[str, Any]]:
    settings = RendererSettings()
    server = _serve()
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        urls = bench_urls(port, articles=3 if quick else 29)
        warm = urls[: settings.concurrency * (1 if quick else 2)]
        reps, runs = 1, (1 if quick else 3)
        ours_runs: list[tuple[float, float, int, TreeMemory]] = []
        base_runs: list[tuple[float, float, int, TreeMemory]] = []
        for _ in range(runs):  # alternate, so machine noise hits both sides alike
            ours_runs += await _ours(settings, urls * reps, warm, 1)
            base_runs += await _playwright(settings, urls * reps, warm, 1)
    finally:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    n = len(urls) * reps

    def rate(rs: list[tuple[float, float, int, TreeMemory]]) -> float:
        return statistics.median(n / wall for wall, _, _, _ in rs)

    def cpu(rs: list[tuple[float, float, int, TreeMemory]]) -> float:
        return statistics.median(c / n for _, c, _, _ in rs)

    def peak(rs: list[tuple[float, float, int, TreeMemory]]) -> TreeMemory:
        return max((m for *_, m in rs), key=lambda m: m.pss_bytes)

    ours, base = rate(ours_runs), rate(base_runs)
    ok = min(o for _, _, o, _ in ours_runs)
    mem, base_mem = peak(ours_runs), peak(base_runs)
    note = f"{len(urls)} URLs (11 TodoMVC apps + articles) x{reps}, median of {runs} alternating runs"
    section = "rich renderer"
    return [
        {
            "section": section,
            "metric": f"pages/s ({os.cpu_count()} cores, {settings.concurrency} pages at once)",
            "value": round(ours, 2),
            "baseline": "plain Playwright, reused pages, wait for load",
            "baseline_value": round(base, 2),
            "target": ">= 5 pages/s and >= 0.8x Playwright",
            "met": ours >= 5 and ours >= 0.8 * base,
            "note": f"{note}; {ok}/{n} rendered with Markdown",
        },
        {
            "section": section,
            "metric": "Python CPU s/page",
            "value": round(cpu(ours_runs), 4),
            "baseline": "plain Playwright",
            "baseline_value": round(cpu(base_runs), 4),
            "target": "",
            "met": None,
            "note": "renderer process only (Chromium's CPU not included)",
        },
        {
            "section": section,
            "metric": "peak Chromium memory, MB (PSS of the process tree)",
            "value": round(mem.pss_bytes / 2**20),
            "baseline": "plain Playwright",
            "baseline_value": round(base_mem.pss_bytes / 2**20),
            "target": "<= 1536 MB",
            "met": mem.pss_bytes <= 1536 * 2**20,
            "note": f"RSS summed over {mem.processes} processes: {mem.rss_bytes / 2**20:.0f} MB "
            f"(Playwright {base_mem.rss_bytes / 2**20:.0f} MB)",
        },
    ]
