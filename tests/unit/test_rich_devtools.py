"""The renderer's DevTools client against a small CDP-speaking WebSocket server (no browser).

What it must do for the interception: answer commands by id, route events to the session
they are tagged with, run handlers as tasks (a slow handler holds back nothing), and fail
what waits when a session detaches or the socket closes, instead of hanging a page.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from websockets.asyncio.server import ServerConnection, serve

from workers.rich.devtools import DevTools, DevToolsClosed, DevToolsError, browser_ws_url


class FakeBrowser:
    """Answers Target.attachToTarget with a session id, echoes other commands, errors on
    ``Fail.me``, never answers ``Hang.forever``; ``push`` sends an event to the client."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.conn: ServerConnection | None = None
        self.connected = asyncio.Event()

    async def handler(self, conn: ServerConnection) -> None:
        self.conn = conn
        self.connected.set()
        async for raw in conn:
            message = json.loads(raw)
            self.received.append(message)
            reply: dict[str, Any] = {"id": message["id"]}
            if "sessionId" in message:
                reply["sessionId"] = message["sessionId"]
            method = message["method"]
            if method == "Hang.forever":
                continue
            if method == "Fail.me":
                reply["error"] = {"code": -32000, "message": "no such thing"}
            elif method == "Target.attachToTarget":
                reply["result"] = {"sessionId": f"S-{message['params']['targetId']}"}
            else:
                reply["result"] = {"echo": message["params"]}
            await conn.send(json.dumps(reply))

    async def push(self, message: dict[str, Any]) -> None:
        assert self.conn is not None
        await self.conn.send(json.dumps(message))


@pytest.fixture
async def browser() -> AsyncIterator[tuple[FakeBrowser, str]]:
    fake = FakeBrowser()
    async with serve(fake.handler, "127.0.0.1", 0) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        yield fake, f"ws://127.0.0.1:{port}/devtools/browser/abc"


@pytest.fixture
async def connected(browser: tuple[FakeBrowser, str]) -> AsyncIterator[tuple[FakeBrowser, DevTools]]:
    fake, url = browser
    devtools = await DevTools.connect(url)
    try:
        yield fake, devtools
    finally:
        await devtools.close()


def test_browser_ws_url_reads_chromiums_port_file() -> None:
    text = "41235\n/devtools/browser/6f1c-22\n"
    assert browser_ws_url(text) == "ws://127.0.0.1:41235/devtools/browser/6f1c-22"
    assert browser_ws_url("41235\n") is None  # the path line not written yet
    assert browser_ws_url("") is None


async def test_commands_are_answered_by_id_and_tagged_with_their_session(connected: Any) -> None:
    fake, devtools = connected
    session = await devtools.attach("T1")
    assert session.session_id == "S-T1"
    a, b = await asyncio.gather(session.send("Page.a", {"n": 1}), session.send("Page.b", {"n": 2}))
    assert a == {"echo": {"n": 1}} and b == {"echo": {"n": 2}}
    assert fake.received[0] == {
        "id": 1,
        "method": "Target.attachToTarget",
        "params": {"targetId": "T1", "flatten": True},
    }
    assert {m.get("sessionId") for m in fake.received[1:]} == {"S-T1"}
    with pytest.raises(DevToolsError, match="no such thing"):
        await session.send("Fail.me")


async def test_events_reach_their_sessions_handler_as_tasks(connected: Any) -> None:
    fake, devtools = connected
    one, two = await devtools.attach("T1"), await devtools.attach("T2")
    seen: list[tuple[str, int]] = []
    release = asyncio.Event()

    async def slow(params: dict[str, Any]) -> None:
        await release.wait()  # a handler awaiting the guard must not block the socket
        seen.append(("slow", params["n"]))

    async def fast(params: dict[str, Any]) -> None:
        seen.append(("fast", params["n"]))

    one.on("Fetch.requestPaused", slow)
    two.on("Fetch.requestPaused", fast)
    await fake.push({"method": "Fetch.requestPaused", "sessionId": "S-T1", "params": {"n": 1}})
    await fake.push({"method": "Fetch.requestPaused", "sessionId": "S-T2", "params": {"n": 2}})
    await fake.push({"method": "Fetch.requestPaused", "sessionId": "S-unknown", "params": {"n": 3}})
    assert await two.send("Page.ping") == {"echo": {}}  # answered while `slow` still waits
    assert seen == [("fast", 2)]
    release.set()
    for _ in range(50):
        if len(seen) == 2:
            break
        await asyncio.sleep(0.01)
    assert seen == [("fast", 2), ("slow", 1)]


async def test_a_detached_session_fails_its_waiting_commands(connected: Any) -> None:
    fake, devtools = connected
    gone, kept = await devtools.attach("T1"), await devtools.attach("T2")
    waiting = asyncio.create_task(gone.send("Hang.forever"))
    await asyncio.sleep(0.05)
    await fake.push({"method": "Target.detachedFromTarget", "params": {"sessionId": "S-T1"}})
    with pytest.raises(DevToolsClosed):
        await asyncio.wait_for(waiting, 2)
    assert gone.closed
    with pytest.raises(DevToolsClosed):
        await gone.send("Page.enable")
    assert await kept.send("Page.enable") == {"echo": {}}  # other tabs carry on


async def test_a_closed_connection_fails_everything_waiting(browser: Any) -> None:
    fake, url = browser
    devtools = await DevTools.connect(url)
    session = await devtools.attach("T1")
    waiting = asyncio.create_task(session.send("Hang.forever"))
    await asyncio.sleep(0.05)
    assert fake.conn is not None
    await fake.conn.close()  # the browser died
    with pytest.raises(DevToolsClosed):
        await asyncio.wait_for(waiting, 2)
    assert devtools.closed and session.closed
    with pytest.raises(DevToolsClosed):
        await devtools.send("Target.getTargets")
    await devtools.close()
    await devtools.close()  # idempotent
