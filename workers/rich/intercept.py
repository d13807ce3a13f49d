"""Playwright's side of the guard: every request of our browser context is answered here.

:meth:`Interceptor.attach` installs, once per browser context, a route for every URL and
a WebSocket route:

- the **main document**: the first main-frame navigation of a page being rendered, to
  the URL being rendered, is fulfilled from the RawPage (``document.py``), never fetched;
- any **other main-frame navigation** (``location.href = ...``, a meta refresh, a form
  submission, a reload) is aborted (``navigation``): we render the one document the
  ingestor fetched, and the page stays on it (an aborted navigation leaves the current
  document in place; a *blocked* one would replace it with Chromium's error page);
- **every other request** (sub-resources, iframe documents, workers' requests, prefetches,
  beacons) goes to :meth:`~workers.rich.guard.RequestGuard.fetch` and is fulfilled with
  what it fetched, or aborted as ``blockedbyclient`` when it refused;
- a request of a page we are not rendering (a tab between renders, a popup) is refused
  (``no_page``);
- **WebSockets** are refused: the route closes them with code 1008 before any connection
  is made (``websocket``). **Service workers** never register (the init script in
  ``scripts.py`` makes ``register()`` reject, as Playwright's ``service_workers="block"``
  does) and ``window.open`` opens nothing.

Whatever slips past all this meets the blackhole proxy (``isolation.py``).
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from typing import Any

from workers.rich.document import Document
from workers.rich.guard import PageBudget, Refusal, RequestGuard, SubRequest
from workers.urls import InvalidURL, canonicalize

__all__ = ["Interceptor", "PageState"]

log = logging.getLogger(__name__)

_EVERYTHING = re.compile(r".*")
_WS_POLICY_CLOSE = 1008  # RFC 6455: policy violation


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


class Interceptor:
    """Routes of our browser contexts (see the module docstring)."""

    def __init__(self, guard: RequestGuard) -> None:
        self.guard = guard
        self._pages: dict[Any, PageState] = {}
        self._contexts: list[Any] = []

    async def attach(self, context: Any) -> None:
        """Route every request and WebSocket of ``context`` through us (idempotent).

        No other page of ``context`` may be in creation meanwhile: a tab created while the
        routes are being registered is not intercepted (measured: 3 of 4 concurrent first
        navigations went to the blackhole). The Renderer creates tabs and attaches under
        one lock.
        """
        if any(known is context for known in self._contexts):
            return
        await context.route(_EVERYTHING, self._on_route)
        await context.route_web_socket(_EVERYTHING, self._on_websocket)
        self._contexts.append(context)
        context.once("close", lambda _context: self._forget(context))

    def reset(self) -> None:
        """Forget every context and page (their browser is gone)."""
        self._contexts.clear()
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

    async def _on_route(self, route: Any) -> None:
        try:
            await self._answer(route)
        except Exception as exc:  # noqa: BLE001 - a route must always be answered, or the page hangs
            log.debug("route of %s failed: %s", route.request.url[:200], exc)
            with contextlib.suppress(Exception):
                await route.abort("failed")

    async def _answer(self, route: Any) -> None:
        request = route.request
        url: str = request.url
        state = self._state_of(request)
        if state is None:
            self.guard.refuse(None, "no_page", "not a page being rendered", url)
            await route.abort("blockedbyclient")
            return
        if request.is_navigation_request() and request.frame.parent_frame is None:
            if not state.served and _same_document(url, state.document.url):
                state.served = True
                doc = state.document
                await route.fulfill(status=doc.status, headers=doc.headers, body=doc.body)
                return
            self.guard.refuse(state.budget, "navigation", "the page may not navigate away", url)
            # "aborted", not "blockedbyclient": Chromium replaces the document with an
            # error page for a blocked navigation, and keeps it for an aborted one.
            await route.abort("aborted")
            return
        outcome = await self.guard.fetch(
            SubRequest(
                method=request.method,
                url=url,
                resource_type=request.resource_type,
                headers=request.headers,
                body=request.post_data_buffer,
            ),
            state.budget,
        )
        if isinstance(outcome, Refusal):
            await route.abort("blockedbyclient")
        else:
            await route.fulfill(status=outcome.status, headers=outcome.headers, body=outcome.body)

    def _state_of(self, request: Any) -> PageState | None:
        try:
            page = request.frame.page  # raises for a service worker's request
        except Exception:  # noqa: BLE001 - no frame: not a page of ours
            return None
        return self._pages.get(page)

    async def _on_websocket(self, ws: Any) -> None:
        self.guard.refuse(None, "websocket", "WebSockets are not opened", ws.url)
        with contextlib.suppress(Exception):
            await ws.close(code=_WS_POLICY_CLOSE, reason="refused by the crawler")
