"""One browser session: the Chromium we start plus Crawl4AI's BrowserManager connected to it.

Crawl4AI connects over CDP (``cdp_url``), creates an isolated context
(``create_isolated_context=True``: without it 10-20% of concurrent pages fail) carrying
our init script and our User-Agent (the ingestor's, also passed as ``--user-agent``), and
keeps one tab per session id, reused from page to page. The Renderer adds the guard's
routes to that context and the isolation flags to the browser.
``cdp_cleanup_on_close`` makes its ``close()`` also stop the Playwright driver.

crawl4ai is imported lazily, after ``CRAWL4_AI_BASE_DIRECTORY`` points under our data dir
(it creates its folders there at import) and ``CRAWL4AI_NO_CLOUD_NOTICE=1``; its logger
writes no file and prints nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from websockets.exceptions import WebSocketException

from workers.errors import StackError
from workers.rich.browser import ChromiumProcess, ProfileSlot
from workers.rich.devtools import DevTools
from workers.rich.failures import short
from workers.rich.memory import TreeMemory
from workers.rich.scripts import INIT_JS

__all__ = ["BrowserSession", "import_crawl4ai"]

log = logging.getLogger(__name__)


def import_crawl4ai(base_dir: Path) -> Any:
    """Import crawl4ai with its base directory under ``base_dir`` and the cloud notice off."""
    if "crawl4ai" not in sys.modules:
        base_dir.mkdir(parents=True, exist_ok=True)
        os.environ.setdefault("CRAWL4_AI_BASE_DIRECTORY", str(base_dir))
        os.environ.setdefault("CRAWL4AI_NO_CLOUD_NOTICE", "1")
    import crawl4ai

    return crawl4ai


class BrowserSession:
    """A started Chromium and the Crawl4AI BrowserManager driving it; ``open`` once, ``close`` once."""

    def __init__(
        self,
        *,
        executable: Path,
        profile: ProfileSlot,
        crawl4ai_dir: Path,
        user_agent: str,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.chromium = ChromiumProcess(
            executable=executable, slot=profile, extra_args=[f"--user-agent={user_agent}", *extra_args]
        )
        self.crawl4ai_dir = crawl4ai_dir
        self.user_agent = user_agent
        self.manager: Any = None
        self.devtools: DevTools | None = None
        """Our own connection to the browser, for the guard's interception (devtools.py)."""

    @property
    def alive(self) -> bool:
        return self.chromium.alive

    async def open(self, *, timeout_s: float = 30.0) -> None:
        c4a = import_crawl4ai(self.crawl4ai_dir)
        from crawl4ai.async_logger import AsyncLogger
        from crawl4ai.browser_manager import BrowserManager

        cdp_url = await self.chromium.start(timeout_s=timeout_s)
        config = c4a.BrowserConfig(
            cdp_url=cdp_url,
            create_isolated_context=True,
            cdp_cleanup_on_close=True,
            cdp_close_delay=0,
            headless=True,
            verbose=False,
            user_agent=self.user_agent,
            init_scripts=[INIT_JS],
        )
        manager = BrowserManager(browser_config=config, logger=AsyncLogger(log_file=None, verbose=False))
        try:
            async with asyncio.timeout(timeout_s):
                await manager.start()
        except Exception as exc:
            await self.chromium.stop()
            raise StackError(f"could not connect to Chromium over CDP: {short(exc)}") from exc
        self.manager = manager
        try:
            if self.chromium.ws_url is None:  # start() returns once it is known: never expected
                raise OSError("Chromium did not name its DevTools endpoint")
            self.devtools = await DevTools.connect(self.chromium.ws_url, timeout_s=timeout_s)
        except (OSError, TimeoutError, WebSocketException) as exc:
            await self.close()
            raise StackError(f"could not open a DevTools connection to Chromium: {short(exc)}") from exc
        log.info("Chromium started: pid=%s profile=%s", self.chromium.pid, self.chromium.slot.user_data_dir)

    async def page(self, run_config: Any) -> Any:
        """The tab of ``run_config.session_id`` (created on first use)."""
        if self.manager is None:
            raise RuntimeError("Browser closed")
        page, _context = await self.manager.get_page(run_config)
        return page

    async def drop(self, session_id: str, *, timeout_s: float = 5.0) -> bool:
        """Close a session's tab; False when the browser did not answer (it needs a restart)."""
        manager = self.manager
        if manager is None:  # closed meanwhile: the tab went with the browser
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await manager.kill_session(session_id)
        except Exception as exc:  # noqa: BLE001 - any failure here means the browser is unhealthy
            log.warning("could not close tab %s: %s", session_id, short(exc))
            manager.sessions.pop(session_id, None)
            return False
        return True

    async def close(self) -> None:
        """Stop Chromium first (Playwright calls then fail fast), then Crawl4AI and its driver."""
        manager, self.manager = self.manager, None
        devtools, self.devtools = self.devtools, None
        await self.chromium.stop()
        if devtools is not None:
            await devtools.close()
        if manager is None:
            return
        try:
            async with asyncio.timeout(10):
                await manager.close()
        except Exception as exc:  # noqa: BLE001 - best-effort cleanup of a dead browser's driver
            log.warning("closing Crawl4AI after the browser: %s", short(exc))
        playwright = getattr(manager, "playwright", None)
        if playwright is not None:  # close() failed half-way: the driver must not outlive us
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await playwright.stop()

    def pids(self) -> list[int]:
        return self.chromium.tree_pids()

    def memory(self) -> TreeMemory:
        """Memory of Chromium's process tree (blocking: call through ``asyncio.to_thread``)."""
        return self.chromium.memory()
