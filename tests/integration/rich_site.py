"""A loopback web site for the rich renderer's tests (aiohttp on a free 127.0.0.1 port).

- ``/spa/...``: ``../shared/data/spa/todomvc/examples`` (the built TodoMVC apps);
- ``/static/...``: ``../shared/data/readability/test/test-pages`` (real article pages);
- ``/late.html``: text added after ``load`` by a timer and by a slow ``fetch``;
- ``/hang.html``: a page whose synchronous script never arrives (DOMContentLoaded never fires);
- ``/oom.html``: a page that allocates until its tab dies;
- ``/status/<code>``: an HTML page with that status.

The renderer never fetches a document: :func:`raw_page` builds the RawPage the ingestor
would have produced from the bytes the site serves, and the site's access log
(``Site.requests``) shows what the browser fetched through the guard. Host names under
``*.rich.test`` resolve to 127.0.0.1 through ``GUARD``'s resolver overrides, only
127.0.0.1 is an allowed network, and :func:`offline_resolver` asks no DNS server for the
other names real pages reference: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from bench.offline import OverridesOnly, fetched_page
from workers.messages import RawPage
from workers.settings import IngestorSettings

__all__ = [
    "DATA",
    "GUARD",
    "LATE_HTML",
    "Site",
    "csr_apps",
    "offline_resolver",
    "raw_page",
    "serve_site",
    "site_body",
]

DATA = Path(os.environ.get("STREAMCRAWL_SHARED_DATA", "/work/shared/data"))
GUARD = IngestorSettings(resolve_overrides={"*.rich.test": "127.0.0.1"}, allowed_networks=["127.0.0.1/32"])
"""The rules of the renderer's guard in these tests: the site's names, loopback 127.0.0.1 only."""


def offline_resolver() -> OverridesOnly:
    """GUARD's resolver without DNS: the real pages' CDN and analytics hosts fail at once."""
    return OverridesOnly(overrides=GUARD.resolve_overrides, allowed_networks=GUARD.allowed_networks)


FILLER = " ".join(["Plenty of ordinary words so the page is a real page with real text."] * 4)

LATE_HTML = f"""<!doctype html><html lang="en"><head><title>Late content</title></head>
<body><h1>Late content</h1><p>{FILLER}</p><div id="out"></div><script>
window.addEventListener("load", () => {{
  setTimeout(() => {{
    document.getElementById("out").insertAdjacentHTML("beforeend", "<p>Injected by a timer after load.</p>");
  }}, 30);
  fetch("/slow.json").then((r) => r.json()).then((d) => {{
    document.getElementById("out").insertAdjacentHTML("beforeend", "<p>" + d.text + "</p>");
  }});
}});
</script></body></html>"""

HANG_HTML = f"""<!doctype html><html><head><title>Hang</title><script src="/hang.js"></script></head>
<body><p>{FILLER}</p></body></html>"""

OOM_HTML = f"""<!doctype html><html><head><title>Hog</title></head><body><p>{FILLER}</p><script>
const hog = []; for (;;) {{ hog.push(new Array(1e6).fill(Math.random())); }}
</script></body></html>"""


def csr_apps() -> list[tuple[str, list[str]]]:
    """(path under /spa/, expected strings) for every app labelled ``csr`` in the manifest."""
    manifest = json.loads((DATA / "spa/manifest.json").read_text())
    out = []
    for key, group in manifest.items():
        if not key.startswith("todomvc"):
            continue
        for path, info in group.items():
            if info.get("label") == "csr":
                out.append((path.removeprefix("examples/"), list(info["expect_after_js"])))
    return out


PAGES = {"/late.html": LATE_HTML, "/hang.html": HANG_HTML, "/oom.html": OOM_HTML}


def site_body(path: str) -> bytes:
    """The bytes the site serves at ``path`` (a page or a file under /spa/ or /static/)."""
    if path in PAGES:
        return PAGES[path].encode()
    for prefix, root in (
        ("/spa/", DATA / "spa/todomvc/examples"),
        ("/static/", DATA / "readability/test/test-pages"),
    ):
        if path.startswith(prefix):
            return (root / path.removeprefix(prefix)).read_bytes()
    raise KeyError(path)


def raw_page(url: str, body: bytes | None = None) -> RawPage:
    """The RawPage the ingestor would produce for ``url`` (its body read from the site's files)."""
    return fetched_page(url, site_body(urlsplit(url).path) if body is None else body)


@dataclass
class Site:
    port: int
    requests: list[tuple[str, str]] = field(default_factory=list)
    """(method, path) of every request the site received, in order."""

    def base(self, host: str = "site.rich.test") -> str:
        return f"http://{host}:{self.port}"

    def gets(self, path: str) -> int:
        return sum(1 for method, p in self.requests if method == "GET" and p == path)


async def _page(request: web.Request) -> web.Response:
    return web.Response(text=PAGES[request.path], content_type="text/html")


async def _slow_json(_: web.Request) -> web.Response:
    await asyncio.sleep(0.4)
    return web.json_response({"text": "Loaded by a slow fetch after load."})


async def _hang(_: web.Request) -> web.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    body = f"<!doctype html><html><body><h1>Status {code}</h1><p>{FILLER}</p></body></html>"
    return web.Response(status=code, text=body, content_type="text/html")


@asynccontextmanager
async def serve_site() -> AsyncIterator[Site]:
    """Serve the site on 127.0.0.1; yields it (port and access log)."""
    site = Site(port=0)

    @web.middleware
    async def log_request(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        site.requests.append((request.method, request.path))
        return await handler(request)

    app = web.Application(middlewares=[log_request])
    for path in PAGES:
        app.router.add_get(path, _page)
    app.router.add_get("/slow.json", _slow_json)
    app.router.add_get("/hang.js", _hang)
    app.router.add_get("/status/{code:\\d+}", _status)
    app.router.add_static("/spa/", DATA / "spa/todomvc/examples")
    app.router.add_static("/static/", DATA / "readability/test/test-pages")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    site.port = sock.getsockname()[1]
    try:
        yield site
    finally:
        await runner.cleanup()
