"""The Renderer: RawPages in, rendered DOM + Markdown out, on one Crawl4AI-managed Chromium.

::

    renderer = Renderer(settings.renderer, data_dir=..., ingestor=settings.ingestor)
    async with renderer:
        rendered = await renderer.render(raw_page)   # the RawPage the ingestor fetched

The page is never fetched again: its document is served to Chromium from the RawPage at
its final URL, and every other request it makes goes through the guard (guard.py,
intercept.py) with the ingestor's rules; the browser itself cannot reach the network
(isolation.py).

``concurrency`` slots bound the pages in flight; each slot keeps one Crawl4AI session, a
tab reused from page to page (session.py). A render is ``goto`` until the commit, then
one round trip that waits in the page for DOMContentLoaded, lets it settle and captures
the DOM (scripts.py), all within ``page_timeout_s``; a slot whose render failed gets a fresh
tab. The captured DOM is cut at ``max_rendered_bytes`` (``Rendered.truncated``).

Why we do not call Crawl4AI's ``AsyncPlaywrightCrawlerStrategy.crawl`` per page: its
fixed steps (``wait_for_selector("body")`` ~70 ms, a body-visibility poll ~30 ms, image
and ``window.stop`` scripts, plus 50-250 ms of ``inspect.signature`` in each
``CrawlerRunConfig``) measured ~0.6x plain Playwright here, against a 0.8x target.

The browser is restarted after ``recycle_after_pages`` pages, above ``max_browser_rss_mb``
(the PSS of its process tree, checked every ``memory_check_interval_s``) and when it
dies; a restart waits for the renders in flight and holds new ones back meanwhile.
Errors are StreamCrawl's (failures.py has the table).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from workers.errors import (
    BlockedError,
    ExtractionError,
    RenderTimeout,
    StackError,
    StreamCrawlError,
    TransientFetchError,
)
from workers.ingestor.resolver import Resolver
from workers.messages import RawPage
from workers.rich import metrics
from workers.rich.browser import ProfileSlot, check_executable
from workers.rich.content import page_content
from workers.rich.document import Document, document_of
from workers.rich.failures import classify, failure_reason, short, status_error, tagged
from workers.rich.guard import PageBudget, RequestGuard
from workers.rich.intercept import Interceptor
from workers.rich.isolation import Blackhole, isolation_flags
from workers.rich.scripts import rendered_dom
from workers.rich.session import BrowserSession, import_crawl4ai
from workers.settings import IngestorSettings, RendererSettings

__all__ = ["Rendered", "Renderer", "RendererStats"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Rendered:
    """One rendered page."""

    html: str
    """The DOM after scripts ran (open shadow roots flattened into it)."""
    markdown: str
    """Markdown of the whole rendered body."""
    title: str | None
    description: str | None
    lang: str | None
    links: list[str]
    """Absolute http(s) outlinks of the rendered DOM, deduplicated, in document order."""
    status: int | None
    """HTTP status of the final navigation response."""
    elapsed_s: float
    final_url: str | None = None
    """The URL the document was served at (the RawPage's final URL; client-side routing may change the path)."""
    truncated: bool = False
    """The DOM was cut at ``max_rendered_bytes``."""
    requests: int = 0
    """Requests the guard fetched for the page."""
    refused: dict[str, int] = field(default_factory=dict)
    """Requests the guard refused, by reason."""
    text: str | None = None
    """Plain text of the whole rendered body, from the parse that wrote ``markdown`` (None: not kept)."""


@dataclass(slots=True)
class RendererStats:
    """This renderer's counters (the Prometheus metrics in metrics.py sum over renderers)."""

    pages_rendered: int = 0
    render_failures: int = 0
    browser_restarts: int = 0
    chromium_rss_bytes: int = 0
    """Latest PSS of Chromium's process tree."""
    chromium_peak_rss_bytes: int = 0


@dataclass(slots=True)
class _Slot:
    session_id: str
    config: Any  # crawl4ai.CrawlerRunConfig, built once (its constructor is slow)


class Renderer:
    """Renders pages in one Chromium, at most ``settings.concurrency`` at once."""

    def __init__(
        self,
        settings: RendererSettings,
        *,
        data_dir: Path,
        ingestor: IngestorSettings | None = None,
        resolver: Resolver | None = None,
        settle_quiet_s: float = 0.1,
        memory_check_interval_s: float = 5.0,
    ) -> None:
        """``ingestor``: the rules every request of a page follows (SSRF guard and allowed
        networks, resolver overrides, User-Agent, robots.txt, timeouts); ``resolver``
        replaces the one built from them (offline runs)."""
        self.settings = settings
        self.data_dir = Path(data_dir)
        ingestor = ingestor or IngestorSettings()
        self.user_agent = ingestor.user_agent_header
        self.guard = RequestGuard(settings, ingestor, resolver=resolver)
        self.blackhole = Blackhole()
        self._interceptor = Interceptor(self.guard)
        self._tabs = asyncio.Lock()
        self.settle_quiet_s = settle_quiet_s
        self.memory_check_interval_s = memory_check_interval_s
        self.stats = RendererStats()
        self._profile: ProfileSlot | None = None
        self._session: BrowserSession | None = None
        self._slots: list[_Slot] = []
        self._free: asyncio.Queue[_Slot] = asyncio.Queue()
        self._open = asyncio.Event()
        self._pages_since_start = 0
        self._restart_task: asyncio.Task[None] | None = None
        self._monitor_task: asyncio.Task[None] | None = None
        self._start_error: str | None = None
        self._started = self._stopped = False

    async def __aenter__(self) -> Renderer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # --- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Claim a profile slot (killing orphans of a crashed predecessor), start the browser."""
        if self._started:
            return
        check_executable(self.settings.chromium_path)
        self._started = True
        self._profile = await asyncio.to_thread(ProfileSlot.acquire, self.data_dir)
        try:
            c4a = import_crawl4ai(self.data_dir / "crawl4ai")
            for index in range(max(1, self.settings.concurrency)):
                config = c4a.CrawlerRunConfig(session_id=f"slot-{index}", verbose=False)
                self._slots.append(_Slot(session_id=f"slot-{index}", config=config))
                self._free.put_nowait(self._slots[-1])
            await self.blackhole.start()
            await self._open_browser()
        except BaseException:
            self._stopped = True
            await self._close_browser()
            await self._close_guard()
            self._profile.release()
            raise
        self._open.set()
        metrics.CHROMIUM_RSS_LIMIT.set(self.settings.max_browser_rss_mb * 2**20)
        self._monitor_task = asyncio.create_task(self._monitor(), name="renderer-monitor")

    async def stop(self, *, drain_timeout_s: float = 5.0) -> None:
        """Wait up to ``drain_timeout_s`` for renders in flight, then close the browser. Idempotent."""
        if not self._started or self._stopped:
            return
        self._stopped = True
        self._open.clear()
        for task in (self._monitor_task, self._restart_task):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        held: list[_Slot] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(drain_timeout_s):
                for _ in self._slots:
                    held.append(await self._free.get())
        await self._close_browser()
        await self._close_guard()
        if self._profile is not None:
            self._profile.release()
        for slot in held:  # wake renders still waiting: they see the renderer stopped
            self._free.put_nowait(slot)
        self._open.set()

    async def _open_browser(self) -> None:
        assert self._profile is not None
        session = BrowserSession(
            executable=self.settings.chromium_path,
            profile=self._profile,
            crawl4ai_dir=self.data_dir / "crawl4ai",
            user_agent=self.user_agent,
            extra_args=[*isolation_flags(self.blackhole.port), *self._content_flags()],
        )
        self._session = session
        await session.open(timeout_s=self.settings.browser_start_timeout_s)
        self._pages_since_start = 0

    def _content_flags(self) -> list[str]:
        # Blocked images are not even requested: no route round trip per <img> or CSS image.
        blocked = {kind.lower() for kind in self.settings.blocked_resource_types}
        return ["--blink-settings=imagesEnabled=false"] if "image" in blocked else []

    async def _close_browser(self) -> None:
        session, self._session = self._session, None
        self._interceptor.reset()
        if session is not None:
            await session.close()

    async def _close_guard(self) -> None:
        await self.guard.aclose()
        await self.blackhole.stop()

    def browser_pids(self) -> list[int]:
        """PIDs of the current Chromium process tree (for tests and diagnostics)."""
        return self._session.pids() if self._session is not None else []

    # --- restarts and monitoring ---------------------------------------------------------

    def _request_restart(self, reason: str) -> None:
        if self._stopped or (self._restart_task is not None and not self._restart_task.done()):
            return
        self._open.clear()  # from now on, renders wait for the new browser
        self._restart_task = asyncio.create_task(self._restart(reason), name=f"renderer-restart-{reason}")

    async def _restart(self, reason: str) -> None:
        held: list[_Slot] = []
        try:
            for _ in self._slots:  # wait for the renders in flight
                held.append(await self._free.get())
            log.info("restarting Chromium (%s) after %d pages", reason, self._pages_since_start)
            await self._close_browser()
            try:
                await self._open_browser()
                self._start_error = None
            except (StreamCrawlError, OSError) as exc:
                self._start_error = short(exc)
                log.error("Chromium restart failed: %s", self._start_error)
                await asyncio.sleep(1.0)  # renders fail fast meanwhile; the next one retries
            self.stats.browser_restarts += 1
            metrics.BROWSER_RESTARTS.labels(reason).inc()
        finally:
            for slot in held:
                self._free.put_nowait(slot)
            if not self._stopped:
                self._open.set()

    async def _monitor(self) -> None:
        while True:
            await asyncio.sleep(self.memory_check_interval_s)
            session = self._session
            if session is None or not self._open.is_set():
                continue
            if not session.alive:
                self._request_restart("crash")
                continue
            memory = await asyncio.to_thread(session.memory)
            self.stats.chromium_rss_bytes = memory.pss_bytes
            self.stats.chromium_peak_rss_bytes = max(self.stats.chromium_peak_rss_bytes, memory.pss_bytes)
            metrics.CHROMIUM_RSS.set(memory.pss_bytes)
            if memory.pss_bytes > self.settings.max_browser_rss_mb * 2**20:
                log.info(
                    "Chromium uses %d MB > %d MB", memory.pss_bytes >> 20, self.settings.max_browser_rss_mb
                )
                self._request_restart("memory")

    # --- rendering -----------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _slot(self) -> AsyncIterator[_Slot]:
        while True:
            if self._stopped:
                raise StackError("the Renderer was stopped")
            await self._open.wait()
            slot = await self._free.get()
            if self._open.is_set() and not self._stopped:
                break
            self._free.put_nowait(slot)  # a restart or stop began meanwhile: it needs every slot
        try:
            yield slot
        finally:
            self._free.put_nowait(slot)

    async def render(self, page: RawPage) -> Rendered:
        """Render ``page`` (an http(s) RawPage with a body). Raises StreamCrawl errors, see failures.py."""
        url = page.final_url
        if not url.lower().startswith(("http://", "https://")):
            raise BlockedError(f"the renderer only loads http(s) URLs, not {url[:80]!r}")
        if not self._started or self._stopped:
            raise StackError("the Renderer is not running: use `async with Renderer(...)`")
        started = time.perf_counter()
        try:
            document = document_of(page)
            async with self._slot() as slot:
                budget = self.guard.budget(timeout_s=self.settings.page_timeout_s)
                html, truncated = await self._load(slot, document, budget)
            rendered = await asyncio.to_thread(
                self._rendered, html, document, budget, truncated, time.perf_counter() - started
            )
        except StreamCrawlError as exc:
            self.stats.render_failures += 1
            metrics.RENDER_FAILURES.labels(failure_reason(exc)).inc()
            raise
        finally:
            self._pages_since_start += 1
            if self._pages_since_start >= self.settings.recycle_after_pages > 0:
                self._request_restart("pages")
        self.stats.pages_rendered += 1
        metrics.PAGES_RENDERED.inc()
        metrics.RENDER_SECONDS.observe(rendered.elapsed_s)
        if truncated:
            metrics.TRUNCATED.labels("rendered").inc()
        return rendered

    async def _load(self, slot: _Slot, document: Document, budget: PageBudget) -> tuple[str, bool]:
        session = self._session
        if session is None or session.manager is None or session.devtools is None or not session.alive:
            self._request_restart("crash")
            reason = self._start_error or "restarting"
            raise tagged(TransientFetchError(f"browser unavailable ({reason})"), "browser_crash")
        url = document.url
        timeout_s = self.settings.page_timeout_s
        deadline = time.monotonic() + timeout_s
        ok = False
        try:
            async with asyncio.timeout(timeout_s):
                async with self._tabs:  # see Interceptor.attach
                    page = await session.page(slot.config)
                    await self._interceptor.attach(page, session.devtools)
                with self._interceptor.serving(page, document, budget) as state:
                    await page.goto(url, wait_until="commit", timeout=timeout_s * 1000)
                    if not state.served:  # never expected: the navigation was not ours to answer
                        raise tagged(TransientFetchError(f"{url} was not served by the guard"), "other")
                    html, truncated = await rendered_dom(
                        page,
                        timeout_s=deadline - time.monotonic(),
                        quiet_s=self.settle_quiet_s,
                        settle_s=self.settings.settle_timeout_s,
                        max_bytes=self.settings.max_rendered_bytes,
                    )
            ok = True
        except TimeoutError as exc:
            message = f"not rendered within {timeout_s:g}s: {url}"
            raise tagged(RenderTimeout(message), "timeout") from exc
        except Exception as exc:
            error = classify(exc, url, browser_alive=session.alive)
            if failure_reason(error) == "browser_crash":
                self._request_restart("crash")
            raise error from exc
        finally:
            if not ok and not await session.drop(slot.session_id):
                self._request_restart("crash")
        return html, truncated

    def _rendered(
        self, html: str, document: Document, budget: PageBudget, truncated: bool, elapsed_s: float
    ) -> Rendered:
        url = document.url
        error = status_error(document.status, url)
        if error is not None:
            raise error
        if not html.strip():
            raise tagged(ExtractionError(f"rendering {url} produced an empty DOM"), "empty")
        content = page_content(html, url=url)
        return Rendered(
            html=html,
            markdown=content.markdown,
            title=content.title,
            description=content.description,
            lang=content.lang,
            links=content.links,
            status=document.status,
            elapsed_s=elapsed_s,
            final_url=url,
            truncated=truncated,
            requests=budget.fetched,
            refused=dict(budget.refused),
            text=content.text,
        )
