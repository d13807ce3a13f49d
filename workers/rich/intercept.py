"""The browser's side of the guard: every request a tab makes is answered here.

:meth:`Interceptor.attach` pauses, once per tab, every request of that tab at the
DevTools ``Fetch`` domain (a session of the tab on the renderer's own DevTools connection,
devtools.py, ``Fetch.enable`` for ``*``): its
frames, iframes included, and its dedicated workers (measured: their requests pause in
the tab's session, attributed to the main frame). Per browser context it also installs
a WebSocket route. Then:

- the **main document**: the first main-frame navigation of a page being rendered, to
  the URL being rendered, is fulfilled from the RawPage (``document.py``), never fetched;
- any **other main-frame navigation** (``location.href = ...``, a meta refresh, a form
  submission, a reload) is aborted (``navigation``): we render the one document the
  ingestor fetched, and the page stays on it (an aborted navigation leaves the current
  document in place; a *blocked* one would replace it with Chromium's error page);
- a **CORS preflight** is answered in place, as Playwright's routing does (the request
  it announces comes next and meets the guard);
- **every other request** (sub-resources, iframe documents, workers' requests, prefetches,
  beacons) goes to :meth:`~workers.rich.guard.RequestGuard.fetch` and is fulfilled with
  what it fetched, or failed as ``BlockedByClient`` when it refused;
- Chromium's own **favicon** request is aborted (Playwright's routing does the same);
- a request of a tab that is not rendering a page (between renders) is refused
  (``no_page``);
- **WebSockets** are refused: the route closes them with code 1008 before any connection
  is made (``websocket``). **Service workers** never register (the init script in
  ``scripts.py`` makes ``register()`` reject, as Playwright's ``service_workers="block"``
  does) and ``window.open`` opens nothing.

Whatever slips past all this (a tab we never attached, a shared worker) meets the
blackhole proxy (``isolation.py``).

Why the Fetch domain and not Playwright's ``context.route``: the same interception
underneath, but Playwright's routing builds request and route objects, checks the
handler's signature and captures stack traces for every request, in our process and in
its driver, and turns Chromium's cache off. Measured through the Renderer on pages that
make 100 refused requests each: per request 1.9 ms of our CPU, 1.4 ms of the driver's
and 3.9 ms of Chromium's with ``route``; 0.7, 1.0 and 3.1 ms with the Fetch domain.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import re
from collections.abc import Iterator, Mapping
from typing import Any

from workers.rich.devtools import DevTools, DevToolsSession
from workers.rich.document import Document
from workers.rich.guard import PageBudget, Refusal, RequestGuard, SubRequest
from workers.urls import InvalidURL, canonicalize

__all__ = ["Interceptor", "PageState"]

log = logging.getLogger(__name__)

_EVERYTHING = re.compile(r".*")
_WS_POLICY_CLOSE = 1008  # RFC 6455: policy violation
_PATTERNS = {"patterns": [{"urlPattern": "*", "requestStage": "Request"}]}


class PageState:
    """What the interception knows about one page being rendered."""

    __slots__ = ("budget", "document", "served")

    def __init__(self, document: Document, budget: PageBudget) -> None:
        self.document = document
        self.budget = budget
        self.served = False


def _same_document(a: str, b: str) -> bool:
    try:
        return canonicalize(a) == canonicalize(b)
    except InvalidURL:
        return a.split("#", 1)[0] == b.split("#", 1)[0]


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _post_body(request: Mapping[str, Any]) -> bytes | None:
    entries = request.get("postDataEntries")
    if entries:
        return b"".join(base64.b64decode(entry.get("bytes", "")) for entry in entries)
    data = request.get("postData")
    return data.encode("utf-8") if isinstance(data, str) else None


def _fail(request_id: str, reason: str) -> tuple[str, dict[str, Any]]:
    return "Fetch.failRequest", {"requestId": request_id, "errorReason": reason}


def _fulfil(
    request_id: str, status: int, headers: Mapping[str, str], body: bytes
) -> tuple[str, dict[str, Any]]:
    return "Fetch.fulfillRequest", {
        "requestId": request_id,
        "responseCode": status,
        "responseHeaders": [{"name": name, "value": value} for name, value in headers.items()],
        "body": base64.b64encode(body).decode("ascii"),
    }


class _Tab:
    """One attached tab: its DevTools session and its main frame's id."""

    __slots__ = ("cdp", "main_frame")

    def __init__(self, cdp: DevToolsSession, main_frame: str) -> None:
        self.cdp = cdp
        self.main_frame = main_frame


class Interceptor:
    """Request interception of our tabs (see the module docstring)."""

    def __init__(self, guard: RequestGuard) -> None:
        self.guard = guard
        self._pages: dict[Any, PageState] = {}
        self._tabs: dict[Any, _Tab] = {}
        self._contexts: list[Any] = []

    async def attach(self, page: Any, devtools: DevTools) -> None:
        """Pause every request of ``page`` for us on ``devtools`` (the renderer's own connection to
        the browser, devtools.py), and route its context's WebSockets (idempotent).

        Call before the tab's first navigation. No other page of the context may be in
        creation meanwhile: a tab created while the WebSocket route is being registered
        is not covered by it. The Renderer creates tabs and attaches under one lock.
        """
        context = page.context
        if not any(known is context for known in self._contexts):
            await context.route_web_socket(_EVERYTHING, self._on_websocket)
            self._contexts.append(context)
            context.once("close", lambda _context: self._forget(context))
        if page in self._tabs:
            return
        # Playwright's CDP session only names the tab's target; its traffic goes over ours.
        probe = await context.new_cdp_session(page)
        try:
            info = await probe.send("Target.getTargetInfo")
        finally:
            with contextlib.suppress(Exception):
                await probe.detach()
        cdp = await devtools.attach(str(info["targetInfo"]["targetId"]))
        tree = await cdp.send("Page.getFrameTree")
        tab = _Tab(cdp, str(tree["frameTree"]["frame"]["id"]))

        async def on_paused(event: dict[str, Any]) -> None:
            await self._on_paused(page, tab, event)

        cdp.on("Fetch.requestPaused", on_paused)
        await cdp.send("Fetch.enable", _PATTERNS)
        self._tabs[page] = tab
        page.once("close", lambda _page: self._tabs.pop(page, None))

    def reset(self) -> None:
        """Forget every context, tab and page (their browser is gone)."""
        self._contexts.clear()
        self._tabs.clear()
        self._pages.clear()

    def _forget(self, context: Any) -> None:
        self._contexts = [known for known in self._contexts if known is not context]

    @contextlib.contextmanager
    def serving(self, page: Any, document: Document, budget: PageBudget) -> Iterator[PageState]:
        """While inside, ``page`` is rendering ``document`` under ``budget``."""
        state = PageState(document, budget)
        self._pages[page] = state
        try:
            yield state
        finally:
            if self._pages.get(page) is state:
                del self._pages[page]

    async def _on_paused(self, page: Any, tab: _Tab, event: dict[str, Any]) -> None:
        request_id = str(event.get("requestId"))
        try:
            method, params = await self._answer(page, tab, event)
        except Exception as exc:  # noqa: BLE001 - a request must always be answered, or the page hangs
            log.debug("interception of %s failed: %s", str(event.get("request", {}).get("url"))[:200], exc)
            method, params = _fail(request_id, "Failed")
        try:
            await tab.cdp.send(method, params)
        except Exception as exc:  # noqa: BLE001 - the tab closed or navigated meanwhile: nothing waits
            log.debug("answering a paused request with %s failed: %s", method, exc)
            if method != "Fetch.failRequest":
                with contextlib.suppress(Exception):
                    await tab.cdp.send(*_fail(request_id, "Failed"))

    async def _answer(self, page: Any, tab: _Tab, event: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        request_id = str(event["requestId"])
        request: dict[str, Any] = event["request"]
        url = str(request["url"]) + str(request.get("urlFragment") or "")
        headers: dict[str, str] = request.get("headers") or {}
        method = str(request.get("method") or "GET")
        kind = str(event.get("resourceType") or "Other").lower()
        if kind == "other" and url.split("?", 1)[0].endswith("/favicon.ico"):
            # Chromium's own favicon fetch, not the page's: aborted uncounted, as Playwright's routing does.
            return _fail(request_id, "Aborted")
        state = self._pages.get(page)
        if state is None:
            self.guard.refuse(None, "no_page", "not a page being rendered", url)
            return _fail(request_id, "BlockedByClient")
        if kind == "document" and event.get("frameId") == tab.main_frame:
            if not state.served and _same_document(url, state.document.url):
                state.served = True
                doc = state.document
                return _fulfil(request_id, doc.status, doc.headers, doc.body)
            self.guard.refuse(state.budget, "navigation", "the page may not navigate away", url)
            # "Aborted", not "BlockedByClient": Chromium replaces the document with an
            # error page for a blocked navigation, and keeps it for an aborted one.
            return _fail(request_id, "Aborted")
        announced = _header(headers, "access-control-request-method")
        if method.upper() == "OPTIONS" and (kind == "preflight" or announced is not None):
            cors = {
                "Access-Control-Allow-Origin": _header(headers, "origin") or "*",
                "Access-Control-Allow-Methods": announced or "GET, POST, OPTIONS, DELETE",
                "Access-Control-Allow-Credentials": "true",
            }
            asked = _header(headers, "access-control-request-headers")
            if asked:
                cors["Access-Control-Allow-Headers"] = asked
            return _fulfil(request_id, 204, cors, b"")
        outcome = await self.guard.fetch(
            SubRequest(
                method=method,
                url=url,
                resource_type=kind,
                headers=headers,
                body=_post_body(request) if request.get("hasPostData") or "postData" in request else None,
            ),
            state.budget,
        )
        if isinstance(outcome, Refusal):
            return _fail(request_id, "BlockedByClient")
        return _fulfil(request_id, outcome.status, outcome.headers, outcome.body)

    async def _on_websocket(self, ws: Any) -> None:
        self.guard.refuse(None, "websocket", "WebSockets are not opened", ws.url)
        with contextlib.suppress(Exception):
            await ws.close(code=_WS_POLICY_CLOSE, reason="refused by the crawler")
