"""A tiny web server on 127.0.0.1 that counts every GET by path and host (for fetch-once tests).

Pages ``/p/<n>`` are small HTML documents with real text (routed to the fast path);
``/robots.txt`` allows everything. ``delay_s`` slows every page response, so a test can
hold many fetches in flight at once.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import web

from tests.helpers.ports import free_port

__all__ = ["CountingWeb"]

_TEXT = (
    "StreamCrawl counts every request this server answers, so a test can prove that each "
    "URL of a crawl was fetched exactly once, whatever happened to the broker meanwhile. "
)


class CountingWeb:
    def __init__(self, *, delay_s: float = 0.0) -> None:
        self.delay_s = delay_s
        self.gets: Counter[str] = Counter()
        """``host/path`` -> number of GETs (robots.txt included)."""
        self.port = 0
        self._runner: web.AppRunner | None = None

    def url(self, host: str, path: str) -> str:
        return f"http://{host}:{self.port}{path}"

    def page_gets(self) -> Counter[str]:
        return Counter({k: v for k, v in self.gets.items() if "/p/" in k})

    async def _page(self, request: web.Request) -> web.Response:
        self.gets[f"{request.host.split(':')[0]}{request.path}"] += 1
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        n = request.match_info["n"]
        body = f"<html><head><title>Page {n}</title></head><body><article><h1>Page {n}</h1>"
        body += "".join(f"<p>{_TEXT * 3} ({n}.{i})</p>" for i in range(4)) + "</article></body></html>"
        return web.Response(text=body, content_type="text/html")

    async def _robots(self, request: web.Request) -> web.Response:
        self.gets[f"{request.host.split(':')[0]}{request.path}"] += 1
        return web.Response(text="User-agent: *\nAllow: /\n", content_type="text/plain")

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/p/{n}", self._page)
        app.router.add_get("/robots.txt", self._robots)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
