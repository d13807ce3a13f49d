"""A DevTools connection of our own to the browser: the guard's requests skip Playwright.

The Interceptor answers every request a tab makes at the ``Fetch`` domain. Through a
Playwright CDP session each paused request costs four hops (Chromium -> Playwright's Node
driver -> our process, and the answer back the same way), and both processes parse and
re-serialise the message (the answer carries the body, base64). Here the renderer keeps one
WebSocket to Chromium's browser endpoint and attaches to each tab in flat mode
(``Target.attachToTarget`` with ``flatten``: one socket, messages tagged with the
session id), so a paused request is two hops and one parse. Playwright still drives the
tabs (create, navigate, evaluate, close); only the interception's traffic moves here.

::

    devtools = await DevTools.connect("ws://127.0.0.1:9222/devtools/browser/<id>")
    session = await devtools.attach(target_id)
    session.on("Fetch.requestPaused", handler)      # async handler(params)
    await session.send("Fetch.enable", {...})
    await devtools.close()

A command whose session detaches (the tab closed or crashed) or whose socket closes (the
browser died) fails with :class:`DevToolsClosed` instead of waiting forever. Event
handlers run as tasks, so a handler that awaits (the guard fetching a sub-resource) never
holds back the socket's other messages.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

__all__ = ["DevTools", "DevToolsClosed", "DevToolsError", "DevToolsSession", "browser_ws_url"]

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Coroutine[Any, Any, None]]

_MAX_MESSAGE = 256 * 2**20
"""Largest message accepted from Chromium (a paused POST with its body, a big frame tree)."""


class DevToolsError(Exception):
    """Chromium answered a command with an error."""


class DevToolsClosed(DevToolsError):
    """The session detached or the connection closed before the answer came."""


def browser_ws_url(port_file_text: str, host: str = "127.0.0.1") -> str | None:
    """The browser endpoint from Chromium's ``DevToolsActivePort`` file (port, then path)."""
    lines = port_file_text.split("\n")
    if len(lines) < 2 or not lines[0].strip().isdigit() or not lines[1].startswith("/devtools/browser/"):
        return None
    return f"ws://{host}:{lines[0].strip()}{lines[1].strip()}"


class DevToolsSession:
    """One attached target (a tab): commands and events tagged with its session id."""

    __slots__ = ("_devtools", "_handlers", "closed", "session_id", "target_id")

    def __init__(self, devtools: DevTools, session_id: str, target_id: str) -> None:
        self._devtools = devtools
        self.session_id = session_id
        self.target_id = target_id
        self._handlers: dict[str, Handler] = {}
        self.closed = False

    def on(self, event: str, handler: Handler) -> None:
        """Run ``handler(params)`` as a task for every ``event`` of this session."""
        self._handlers[event] = handler

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        if self.closed:
            raise DevToolsClosed(f"{method}: the session of target {self.target_id} is detached")
        return await self._devtools.send(method, params, session_id=self.session_id)


class DevTools:
    """One WebSocket to Chromium's browser endpoint (see the module docstring)."""

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._ids = itertools.count(1)
        self._pending: dict[int, tuple[asyncio.Future[dict[str, Any]], str | None]] = {}
        self._sessions: dict[str, DevToolsSession] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._reader = asyncio.create_task(self._read(), name="devtools-reader")

    @classmethod
    async def connect(cls, ws_url: str, *, timeout_s: float = 10.0) -> DevTools:
        # No pings: a busy event loop late to answer one must not cut every tab's interception.
        ws = await connect(
            ws_url,
            compression=None,
            max_size=_MAX_MESSAGE,
            ping_interval=None,
            open_timeout=timeout_s,
            close_timeout=2,
        )
        return cls(ws)

    @property
    def closed(self) -> bool:
        return self._closed

    async def attach(self, target_id: str) -> DevToolsSession:
        """A flat session on ``target_id`` (a tab's target id)."""
        result = await self.send("Target.attachToTarget", {"targetId": target_id, "flatten": True})
        session = DevToolsSession(self, str(result["sessionId"]), target_id)
        self._sessions[session.session_id] = session
        return session

    async def send(
        self, method: str, params: dict[str, Any] | None = None, *, session_id: str | None = None
    ) -> dict[str, Any]:
        if self._closed:
            raise DevToolsClosed(f"{method}: the DevTools connection is closed")
        message: dict[str, Any] = {"id": next(self._ids), "method": method, "params": params or {}}
        if session_id is not None:
            message["sessionId"] = session_id
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[message["id"]] = (future, session_id)
        try:
            try:
                await self._ws.send(json.dumps(message, separators=(",", ":")))
            except ConnectionClosed as exc:
                raise DevToolsClosed(f"{method}: the DevTools connection closed ({exc})") from exc
            return await future
        finally:
            self._pending.pop(message["id"], None)

    async def close(self) -> None:
        """Close the socket and fail what still waits (idempotent)."""
        self._closed = True
        with contextlib.suppress(Exception):
            await self._ws.close()
        if not self._reader.done():
            self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._reader
        self._fail_all("the DevTools connection is closed")
        for task in list(self._tasks):
            task.cancel()

    # --- the reader ----------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                self._dispatch(json.loads(raw))
        except ConnectionClosed:
            pass
        except Exception:  # a broken message must not leave commands waiting
            log.exception("DevTools reader failed")
        finally:
            self._closed = True
            self._fail_all("the DevTools connection closed")

    def _dispatch(self, message: dict[str, Any]) -> None:
        ident = message.get("id")
        if ident is not None:
            entry = self._pending.get(ident)
            if entry is None or entry[0].done():
                return
            future = entry[0]
            error = message.get("error")
            if error is not None:
                future.set_exception(DevToolsError(f"{error.get('message')} ({error.get('code')})"))
            else:
                future.set_result(message.get("result") or {})
            return
        method = message.get("method")
        params = message.get("params") or {}
        if method == "Target.detachedFromTarget":
            self._detached(str(params.get("sessionId")))
            return
        session = self._sessions.get(str(message.get("sessionId")))
        if session is None or method is None:
            return
        if method == "Inspector.detached":
            self._detached(session.session_id)
            return
        handler = session._handlers.get(method)
        if handler is not None:
            task = asyncio.create_task(handler(params))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _detached(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is not None:
            session.closed = True
        for future, owner in list(self._pending.values()):
            if owner == session_id and not future.done():
                future.set_exception(DevToolsClosed(f"target session {session_id} detached"))

    def _fail_all(self, reason: str) -> None:
        for session in self._sessions.values():
            session.closed = True
        self._sessions.clear()
        for future, _owner in list(self._pending.values()):
            if not future.done():
                future.set_exception(DevToolsClosed(reason))
