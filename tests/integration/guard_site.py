"""Servers for the browser-guard tests: an allowed origin and a canary the browser must never reach.

- :class:`Canary` listens on **127.0.0.2** (loopback, outside the allowed networks): an
  HTTP server that records every request and answers with a secret, and a UDP socket
  that records every datagram (WebRTC's STUN would land there).
- :func:`serve_origin` is the demo-like site on **127.0.0.1** (the one allowed network):
  its app script fetches its own data and renders after-JS content, ``/go?to=...``
  redirects anywhere, ``/robots.txt`` disallows ``/private/``; every request is logged.
- :func:`hostile_page` is a page that tries every way a page can make the browser
  send a request (fetch, XHR, img, iframe, script, stylesheet, beacon, prefetch,
  preconnect, speculation rules, a worker's fetch, EventSource, CSS background, video,
  web font, WebRTC) to each target, while its own app renders normally.

Names: ``*.guard.test`` resolve to 127.0.0.1 and ``rebind.guard.test`` to the canary's
127.0.0.2 through the resolver's overrides (:data:`OVERRIDES`), a DNS name that points
at a refused address.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from aiohttp import web

from workers.settings import IngestorSettings

__all__ = [
    "AFTER_JS",
    "CANARY_IP",
    "OVERRIDES",
    "SECRET",
    "Canary",
    "Origin",
    "guard_ingestor",
    "hostile_page",
    "serve_canary",
    "serve_origin",
]

CANARY_IP = "127.0.0.2"
SECRET = "CANARY-SECRET-7f3a"
AFTER_JS = "Rendered by the app from its own data"
OVERRIDES = {"rebind.guard.test": CANARY_IP, "*.guard.test": "127.0.0.1"}
FILLER = " ".join(["An ordinary paragraph of words so the page reads like a real page."] * 5)


def guard_ingestor() -> IngestorSettings:
    """The rules of these tests: only 127.0.0.1/32 allowed, private networks refused."""
    return IngestorSettings(
        allow_private_networks=False, allowed_networks=["127.0.0.1/32"], resolve_overrides=OVERRIDES
    )


@dataclass
class Canary:
    http_port: int = 0
    udp_port: int = 0
    requests: list[str] = field(default_factory=list)
    """``METHOD /path`` of every HTTP request (WebSocket upgrades included)."""
    datagrams: int = 0

    @property
    def base(self) -> str:
        return f"http://{CANARY_IP}:{self.http_port}"

    @property
    def hits(self) -> int:
        return len(self.requests) + self.datagrams


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self, canary: Canary) -> None:
        self.canary = canary

    def datagram_received(self, data: bytes, addr: tuple[str | object, int]) -> None:
        self.canary.datagrams += 1


@asynccontextmanager
async def serve_canary() -> AsyncIterator[Canary]:
    canary = Canary()

    async def record(request: web.Request) -> web.Response:
        canary.requests.append(f"{request.method} {request.path_qs}")
        return web.Response(
            text=SECRET, content_type="text/html", headers={"Access-Control-Allow-Origin": "*"}
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket()
    sock.bind((CANARY_IP, 0))
    await web.SockSite(runner, sock).start()
    canary.http_port = sock.getsockname()[1]
    transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
        lambda: _Datagrams(canary), local_addr=(CANARY_IP, 0)
    )
    canary.udp_port = transport.get_extra_info("sockname")[1]
    try:
        yield canary
    finally:
        transport.close()
        await runner.cleanup()


APP_JS = """
fetch("/data.json").then((r) => r.json()).then((d) => {
  document.getElementById("root").insertAdjacentHTML("beforeend", "<h1>" + d.title + "</h1><p>" + d.text + "</p>");
});
const x = new XMLHttpRequest();
x.open("GET", "/more.json");
x.onload = () => document.getElementById("root").insertAdjacentHTML("beforeend", "<p>" + JSON.parse(x.responseText).text + "</p>");
x.send();
"""


@dataclass
class Origin:
    port: int = 0
    requests: list[tuple[str, str]] = field(default_factory=list)
    pages: dict[str, str] = field(default_factory=dict)
    """path -> HTML served there."""

    def gets(self, path: str) -> int:
        return sum(1 for method, p in self.requests if method == "GET" and p == path)

    def url(self, path: str, host: str = "app.guard.test") -> str:
        return f"http://{host}:{self.port}{path}"


@asynccontextmanager
async def serve_origin() -> AsyncIterator[Origin]:
    origin = Origin()

    @web.middleware
    async def log_request(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        origin.requests.append((request.method, request.path))
        return await handler(request)

    async def page(request: web.Request) -> web.Response:
        html = origin.pages.get(request.path)
        if html is None:
            raise web.HTTPNotFound()
        return web.Response(text=html, content_type="text/html")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPFound(request.query["to"])

    async def robots(_: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nDisallow: /private/\n", content_type="text/plain")

    async def data(request: web.Request) -> web.Response:
        text = {"/data.json": AFTER_JS, "/more.json": "And more of it, loaded by XHR"}[request.path]
        return web.json_response({"title": "Guarded app", "text": text})

    async def script(_: web.Request) -> web.Response:
        return web.Response(text=APP_JS, content_type="application/javascript")

    app = web.Application(middlewares=[log_request])
    app.router.add_get("/robots.txt", robots)
    app.router.add_get("/app.js", script)
    app.router.add_get("/data.json", data)
    app.router.add_get("/more.json", data)
    app.router.add_get("/go", redirect)
    app.router.add_get("/{tail:.*}", page)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    await web.SockSite(runner, sock).start()
    origin.port = sock.getsockname()[1]
    try:
        yield origin
    finally:
        await runner.cleanup()


def _attempts(target: str, n: int, stun: str) -> tuple[str, str]:
    """(markup, script) that make the browser request ``target`` every way a page can."""
    t = target.rstrip("/")
    markup = f"""
<img src="{t}/img.png" alt=""><iframe src="{t}/frame.html"></iframe>
<script src="{t}/script.js"></script><link rel="stylesheet" href="{t}/style.css">
<link rel="prefetch" href="{t}/prefetch"><link rel="preconnect" href="{t}"><link rel="dns-prefetch" href="{t}">
<div style="background-image: url('{t}/bg.png')">.</div>
<video src="{t}/video.mp4" autoplay muted></video>
<style>@font-face {{ font-family: f{n}; src: url("{t}/font.woff2"); }} .f{n} {{ font-family: f{n}; }}</style>
<p class="f{n}">text in a web font</p>
<script type="speculationrules">{json.dumps({"prerender": [{"urls": [t + "/prerender"]}], "prefetch": [{"urls": [t + "/spec-prefetch"]}]})}</script>
"""
    script = f"""
  note("fetch{n}", fetch("{t}/fetch").then((r) => r.text()));
  note("post{n}", fetch("{t}/post", {{method: "POST", body: "x"}}).then((r) => r.text()));
  const x{n} = new XMLHttpRequest(); x{n}.open("GET", "{t}/xhr");
  x{n}.onload = () => out("xhr{n}: " + x{n}.responseText); x{n}.onerror = () => out("xhr{n} blocked"); x{n}.send();
  navigator.sendBeacon("{t}/beacon", "x");
  const w{n} = new Worker(URL.createObjectURL(new Blob([
    'fetch("{t}/worker").then((r) => r.text()).then((t) => postMessage("worker{n}: " + t), () => postMessage("worker{n} blocked"))'])));
  w{n}.onmessage = (e) => out(e.data);
  try {{ const es = new EventSource("{t}/sse"); es.onerror = () => es.close(); }} catch (e) {{}}
  try {{
    const pc = new RTCPeerConnection({{iceServers: [{{urls: "{stun}"}}]}});
    pc.createDataChannel("d"); pc.createOffer().then((o) => pc.setLocalDescription(o));
  }} catch (e) {{}}
"""
    return markup, script


def hostile_page(targets: list[str], *, stun: str) -> str:
    """An app page on the origin (``#root`` filled by /app.js) that also attacks every target."""
    parts = [_attempts(t, n, stun) for n, t in enumerate(targets)]
    markup = "".join(m for m, _ in parts)
    script = "".join(s for _, s in parts)
    return f"""<!doctype html><html lang="en"><head><title>Guarded app</title>
<script src="/app.js" defer></script></head><body><div id="root"></div><div id="log"></div>
{markup}
<script>
const out = (t) => document.getElementById("log").insertAdjacentHTML("beforeend", "<p>" + t + "</p>");
const note = (name, p) => p.then((t) => out(name + ": " + t), () => out(name + " blocked"));
{script}
</script>
<p>{FILLER}</p>
</body></html>"""
