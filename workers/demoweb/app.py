"""The aiohttp application: one catch-all handler that dispatches on Host, then path.

Deterministic responses are built once and kept in a bounded LRU keyed by (Host header,
path), so a cached hit costs a dict lookup and a ``web.Response``. Behaviour that depends
on history (``/flaky/`` and ``/throttle/`` fail on their first request only) is keyed per
host+path; with several server processes the "already seen" marks live as files in a
shared state directory (atomic ``O_CREAT|O_EXCL``), so a retry that lands on another
process still succeeds.

What a generated host (``site-NNN.demo.test``, ``blog.site-NNN.demo.test``) serves at a
path is :func:`graph.node` (the site tree, its links and each page's kind; see graph.py
for the tree); the kind (kinds.KINDS) decides the answer::

    /robots.txt   per-site rules + Sitemap: lines      /sitemap.xml, /sitemaps/*   see sitemaps.py
    /article/<n> /private/<n> /landing/<n> ...        article template (links from the node)
    /, /section/..., /calendar/..., /list/<n> ...       listing template
    /noindex/1 /none/1 /nofollow/1                      meta robots; /x-robots/*: X-Robots-Tag header
    /app/<n>                 SPA shell; /static/js/main.<h>.bundle.js + /api/app/<n>.json
    /redirect/<n>/<k>        k redirects (301/302/307/308, absolute and relative) -> /landing/<n>
    /redirect-loop/<n>       302 to itself
    /missing/<n> 404         /gone/<n> 410          /error/<n> 500 always      /admin/* 403
    /flaky/<n>               500 on the first request, then the article
    /throttle/<n>            429 Retry-After: 1 on the first request, then the article
    /throttle-always/<n>     429 Retry-After: 1 always
    /slow/<n>?delay=S        article after S seconds (default slow_delay_s)
    /stall/<n>               headers + a byte every stall_interval_s, for stall_max_s
    /huge/<n>[?length=1]     > huge_bytes of HTML, streamed (chunked, or with Content-Length)
    /files/<n>.pdf  /report/<n>  /data/<n>.json  /images/<n>.png     non-HTML
    /xhtml/<n>               application/xhtml+xml article
    /charset/<variant>/<n>   windows-1251, shift_jis, bogus, invalid-utf8, meta-mismatch, undeclared
    anything else            404

With ``access_log_dir`` every request is logged (accesslog.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from aiohttp import web

from workers.demoweb import graph, pages, spa, special
from workers.demoweb.accesslog import AccessLogWriter
from workers.demoweb.data import DataFiles, locate_data_dir
from workers.demoweb.graph import Node
from workers.demoweb.hosts import DEMO_SUFFIX
from workers.demoweb.site import Origin, SiteProfile, robots_txt, site_profile
from workers.demoweb.sitemaps import ROBOTS_SITEMAPS, sitemap_file

__all__ = ["DemoWebConfig", "make_app"]

log = logging.getLogger(__name__)

_HTML: Final = "text/html; charset=utf-8"
_DATA_LABELS: Final = frozenset({"readability", "spa", "rendertron"})
_ERRORS: Final = {
    "not_found": (404, "Not Found"),
    "unknown": (404, "Not Found"),
    "gone": (410, "Gone"),
    "server_error": (500, "Internal Server Error"),
    "admin": (403, "Forbidden"),
    "throttled_always": (429, "Too Many Requests"),
}
_SITE_CSS: Final = b"/* demo site stylesheet */ body{background:#fafafa}"
_NOOP_JS: Final = b"/* demo framework chunk: the page is already rendered on the server */\n"
_REDIRECT_CODES: Final = (301, 302, 307, 308)


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoWebConfig:
    """How the demo web behaves. Every field has a CLI flag of the same name (``--link-hosts``)."""

    data_dir: Path | None = None
    """../shared/data root; None: STREAMCRAWL_DEMO_DATA_DIR, then ../shared/data next to the repo."""
    link_hosts: int = 60
    """Outlinks to other sites point at site-001 .. site-<link_hosts>."""
    crawl_delay_s: float = 1.0
    """Crawl-delay announced by the robots.txt of sites that have one."""
    slow_delay_s: float = 1.5
    """Delay of /slow/<n> without ?delay=."""
    max_delay_s: float = 300.0
    """Cap on ?delay= of /slow/."""
    stall_interval_s: float = 0.5
    """/stall/<n> sends one byte this often."""
    stall_max_s: float = 120.0
    """/stall/<n> ends its body after this long."""
    huge_bytes: int = 6 * 1024 * 1024
    """Minimum body size of /huge/<n>."""
    cache_size: int = 8192
    """Responses kept in the per-process LRU."""
    state_dir: Path | None = None
    """Directory shared by server processes for first-request marks (flaky/throttle); None: in memory."""
    access_log_dir: Path | None = None
    """Log every request here, one file per server process (accesslog.py); None: no log."""


@dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    body: bytes
    headers: dict[str, str]


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _reply(body: bytes, content_type: str = _HTML, status: int = 200, **extra: str) -> _Reply:
    return _Reply(status, body, {"Content-Type": content_type, **extra})


def _error(status: int, reason: str, **extra: str) -> _Reply:
    return _reply(pages.error_page(status, reason), _HTML, status, **extra)


def _int(text: str) -> int | None:
    return int(text) if text.isdigit() and len(text) < 10 else None


class _Dispatcher:
    def __init__(self, config: DemoWebConfig) -> None:
        self.config = config
        self.data = DataFiles(locate_data_dir(config.data_dir))
        self._cache: OrderedDict[tuple[str, str], _Reply] = OrderedDict()
        self._seen: set[str] = set()
        self.log = AccessLogWriter(config.access_log_dir) if config.access_log_dir else None

    # -- entry point -----------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        log = self.log
        if log is None:
            return await self._handle(request)
        start = time.time()
        status = 499
        try:
            response = await self._handle(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except Exception:
            status = 500
            raise
        finally:
            log.record(
                start=start,
                method=request.method,
                host=request.headers.get("Host", "").lower(),
                target=request.raw_path,
                status=status,
                user_agent=request.headers.get("User-Agent", ""),
            )

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        host_header = request.headers.get("Host", "").lower()
        path = request.path
        key = (host_header, path)
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return web.Response(status=cached.status, body=cached.body, headers=cached.headers)
        host, _, port = host_header.partition(":")
        host = host.rstrip(".")
        if not host.endswith("." + DEMO_SUFFIX):
            return self._respond(_error(404, f"unknown host {host!r}: the demo web serves *.{DEMO_SUFFIX}"))
        origin = Origin(host, f":{port}" if port else "", self.config.link_hosts)
        label = host[: -len(DEMO_SUFFIX) - 1]
        # Mirrors (`m7.readability.demo.test`) serve the same real pages under many hosts,
        # so benchmarks can spread real pages over hosts as a crawl of real sites would.
        data_label = label.rsplit(".", 1)[-1]
        if data_label in _DATA_LABELS:
            reply = self._data(data_label, path)
        else:
            profile = site_profile(host)
            resource = self._resource(origin, profile, path)
            if resource is None:
                page = graph.node(origin, path)
                dynamic = await self._dynamic(request, origin, profile, page)
                if dynamic is not None:
                    return dynamic
                resource = self._page(origin, profile, page)
            reply = resource
        self._cache[key] = reply
        if len(self._cache) > self.config.cache_size:
            self._cache.popitem(last=False)
        return self._respond(reply)

    @staticmethod
    def _respond(reply: _Reply) -> web.Response:
        return web.Response(status=reply.status, body=reply.body, headers=reply.headers)

    # -- deterministic pages (cacheable) ------------------------------------------------
    def _resource(self, origin: Origin, profile: SiteProfile, path: str) -> _Reply | None:
        """Files that are not pages: robots.txt, sitemaps, scripts, styles, SPA data."""
        if path == "/robots.txt":
            body = robots_txt(
                profile, crawl_delay_s=self.config.crawl_delay_s, base=origin.base, sitemaps=ROBOTS_SITEMAPS
            )
            return _reply(body, "text/plain; charset=utf-8")
        sitemap = sitemap_file(origin, path)
        if sitemap is not None:
            return _reply(*sitemap)
        if path == spa.spa_bundle_path(profile):
            return _reply(spa.spa_bundle(profile), "text/javascript; charset=utf-8")
        parts = path.strip("/").split("/")
        if parts[0] == "api" and len(parts) == 3 and parts[1] == "app" and parts[2].endswith(".json"):
            m = _int(parts[2].removesuffix(".json"))
            if m is not None:
                return _reply(spa.spa_data(profile, m), "application/json")
        if path.startswith("/static/") and path.endswith(".css"):
            return _reply(_SITE_CSS, "text/css")
        if parts[0] == "_next":
            return _reply(_NOOP_JS, "text/javascript; charset=utf-8")
        if path == "/favicon.ico":
            return _reply(special.png_body(0, size=16), "image/png")
        return None

    def _page(self, origin: Origin, profile: SiteProfile, page: Node) -> _Reply:
        """The answer for a graph node whose response does not depend on history or time."""
        kind, n = page.kind, page.extra.get("n", 0)
        if page.template != "special":
            reply = _reply(pages.render(origin, page))
            if page.x_robots:
                reply.headers["X-Robots-Tag"] = page.x_robots
            return reply
        if kind in _ERRORS:
            status, reason = _ERRORS[kind]
            return _error(status, reason, **({"Retry-After": "1"} if status == 429 else {}))
        if kind == "spa":
            return _reply(spa.spa_shell(origin, profile, n))
        if kind in ("redirect", "redirect_too_many"):
            return self._redirect(origin, n, page.extra["hops"])
        if kind == "redirect_loop":
            return _reply(b"", _HTML, 302, Location=page.path)
        if kind == "xhtml":
            return _reply(special.xhtml_page(origin, profile, n), "application/xhtml+xml; charset=utf-8")
        if kind.startswith("charset_"):
            body, ctype = special.charset_page(origin, profile, page.path.split("/")[2], n)
            return _reply(body, ctype)
        if kind in ("pdf", "report"):
            return _reply(special.pdf_body(n), "application/pdf")
        if kind == "json":
            return _reply(special.json_body(profile, n), "application/json")
        if kind == "image":
            return _reply(special.png_body(n), "image/png")
        return _error(404, "Not Found")

    def _redirect(self, origin: Origin, n: int, k: int) -> _Reply:
        target = f"/landing/{n}" if k <= 1 else f"/redirect/{n}/{k - 1}"
        if k % 2:
            target = origin.base + target  # odd hops: absolute Location, even hops: relative
        return _reply(b"", _HTML, _REDIRECT_CODES[k % 4], Location=target)

    def _data(self, label: str, path: str) -> _Reply:
        if path == "/robots.txt":
            return _reply(b"User-agent: *\nAllow: /\n", "text/plain; charset=utf-8")
        file = self.data.reply(label, path)
        extra = {"Location": file.location} if file.location else {}
        return _reply(file.body, file.content_type, file.status, **extra)

    # -- history- and time-dependent endpoints (not cached) ------------------------------
    async def _dynamic(
        self, request: web.Request, origin: Origin, profile: SiteProfile, page: Node
    ) -> web.StreamResponse | None:
        kind, n = page.kind, page.extra.get("n", 0)
        if kind in ("flaky", "throttled"):
            if self._first_request(origin.host + page.path):
                if kind == "flaky":
                    return self._respond(_error(500, "Internal Server Error"))
                return self._respond(_error(429, "Too Many Requests", **{"Retry-After": "1"}))
            return self._respond(_reply(pages.render(origin, page)))
        if kind == "slow":
            try:
                delay = float(request.query.get("delay", self.config.slow_delay_s))
            except ValueError:
                delay = self.config.slow_delay_s
            await asyncio.sleep(min(max(delay, 0.0), self.config.max_delay_s))
            return self._respond(_reply(pages.render(origin, page)))
        if kind == "stall":
            return await self._stall(request, origin, n)
        if kind in ("huge", "huge_length"):
            return await self._huge(request, origin, profile, n)
        return None

    def _first_request(self, key: str) -> bool:
        """True exactly once per key across all processes sharing the state dir."""
        if key in self._seen:
            return False
        self._seen.add(key)
        state_dir = self.config.state_dir
        if state_dir is None:
            return True
        name = hashlib.blake2b(key.encode(), digest_size=12).hexdigest()
        try:
            fd = os.open(state_dir / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        except FileExistsError:
            return False
        os.close(fd)
        return True

    async def _stall(self, request: web.Request, origin: Origin, n: int) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": _HTML, "Cache-Control": "no-store"})
        await resp.prepare(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.stall_max_s
        try:
            await resp.write(special.stall_head(origin, n))
            while loop.time() < deadline:
                await asyncio.sleep(self.config.stall_interval_s)
                await resp.write(b" ")
            await resp.write(b"</main></body></html>")
        except (ConnectionResetError, ConnectionError):
            pass
        return resp

    async def _huge(
        self, request: web.Request, origin: Origin, profile: SiteProfile, n: int
    ) -> web.StreamResponse:
        head, chunk, repeats, tail = special.huge_parts(origin, profile, n, self.config.huge_bytes)
        resp = web.StreamResponse(headers={"Content-Type": _HTML})
        if request.query.get("length"):
            resp.content_length = len(head) + len(chunk) * repeats + len(tail)
        await resp.prepare(request)
        try:
            await resp.write(head)
            for _ in range(repeats):
                await resp.write(chunk)
            await resp.write(tail)
        except (ConnectionResetError, ConnectionError):
            pass
        return resp


def make_app(config: DemoWebConfig) -> web.Application:
    """The demo web as an aiohttp application (every method, every path, dispatch on Host)."""
    dispatcher = _Dispatcher(config)
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", dispatcher.handle)
    log = dispatcher.log
    if log is not None:

        async def _start_log(_app: web.Application) -> None:
            log.start()

        async def _close_log(_app: web.Application) -> None:
            await log.close()

        app.on_startup.append(_start_log)
        app.on_cleanup.append(_close_log)
    return app
