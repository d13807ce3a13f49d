"""A loopback web site for the rich renderer's tests (aiohttp on a free 127.0.0.1 port).

- ``/spa/...``: ``../shared/data/spa/todomvc/examples`` (the built TodoMVC apps);
- ``/static/...``: ``../shared/data/readability/test/test-pages`` (real article pages);
- ``/late.html``: text added after ``load`` by a timer and by a slow ``fetch``;
- ``/hang.html``: a response that never comes;
- ``/oom.html``: a page that allocates until its tab dies;
- ``/status/<code>``: an HTML page with that status.

Host names under ``*.rich.test`` resolve to 127.0.0.1 in Chromium through
``HOST_RULES``; every other host is unresolvable, so tests never leave the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

__all__ = ["DATA", "HOST_RULES", "csr_apps", "serve_site"]

DATA = Path(os.environ.get("STREAMCRAWL_SHARED_DATA", "/work/shared/data"))
HOST_RULES = {"*.rich.test": "127.0.0.1", "*": "~NOTFOUND"}
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


async def _late(_: web.Request) -> web.Response:
    return web.Response(text=LATE_HTML, content_type="text/html")


async def _slow_json(_: web.Request) -> web.Response:
    await asyncio.sleep(0.4)
    return web.json_response({"text": "Loaded by a slow fetch after load."})


async def _hang(_: web.Request) -> web.Response:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def _oom(_: web.Request) -> web.Response:
    return web.Response(text=OOM_HTML, content_type="text/html")


async def _status(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    body = f"<!doctype html><html><body><h1>Status {code}</h1><p>{FILLER}</p></body></html>"
    return web.Response(status=code, text=body, content_type="text/html")


@asynccontextmanager
async def serve_site() -> AsyncIterator[int]:
    """Serve the site; yields the port."""
    app = web.Application()
    app.router.add_get("/late.html", _late)
    app.router.add_get("/slow.json", _slow_json)
    app.router.add_get("/hang.html", _hang)
    app.router.add_get("/oom.html", _oom)
    app.router.add_get("/status/{code:\\d+}", _status)
    app.router.add_static("/spa/", DATA / "spa/todomvc/examples")
    app.router.add_static("/static/", DATA / "readability/test/test-pages")
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield sock.getsockname()[1]
    finally:
        await runner.cleanup()
