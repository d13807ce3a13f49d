"""One ASGI middleware around every request: a body-size cap, metrics, one access-log line.

The access log names the route template, status, duration and the key's public id, never
the ``Authorization`` header nor the query string (which may carry a URL a user is
looking up). Plain ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task and a
memory stream per request.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["MAX_BODY_BYTES", "REQUESTS", "REQUEST_SECONDS", "RequestMiddleware"]

log = logging.getLogger("workers.api.access")

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest request body (a POST /crawls list of ~100k domains fits)."""

REQUESTS = Counter("streamcrawl_api_requests_total", "API requests answered", ["method", "route", "status"])
REQUEST_SECONDS = Histogram(
    "streamcrawl_api_request_seconds",
    "API request duration, body sent included",
    ["route"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


async def _send_413(send: Send) -> None:
    body = json.dumps(
        {
            "error": {
                "status": 413,
                "code": "too_large",
                "message": f"request body over {MAX_BODY_BYTES} bytes: split the crawl into several requests",
                "details": [],
            }
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            await _send_413(send)
            self._record(scope, 413, started)
            return
        received = 0
        refused = False

        async def limited_receive() -> Message:
            # A chunked body without Content-Length: answer 413 ourselves once it is too large,
            # and tell the app the client went away (whatever it answers then is dropped).
            nonlocal received, refused, status
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    refused, status = True, 413
                    await _send_413(send)
                    return {"type": "http.disconnect"}
            return message

        async def recording_send(message: Message) -> None:
            nonlocal status
            if refused:
                return
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, limited_receive, recording_send)
        finally:
            self._record(scope, status, started)

    @staticmethod
    def _record(scope: Scope, status: int, started: float) -> None:
        elapsed = time.perf_counter() - started
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        REQUESTS.labels(scope.get("method", ""), template, str(status)).inc()
        REQUEST_SECONDS.labels(template).observe(elapsed)
        state = scope.get("state") or {}
        log.info(
            "%s %s %d %.1f ms key=%s",
            scope.get("method", ""),
            template,
            status,
            elapsed * 1000,
            state.get("key_id") or "-",
        )
