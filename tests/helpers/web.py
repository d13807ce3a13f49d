"""A throwaway aiohttp web server on 127.0.0.1 for tests (one catch-all GET handler), and
ingestor settings that let the fetcher reach it as ``*.demo.test``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import web

from workers.settings import IngestorSettings

__all__ = ["local_ingestor_settings", "serve"]

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@contextlib.asynccontextmanager
async def serve(handler: Handler) -> AsyncIterator[int]:
    """``async with serve(handler) as port:`` every GET goes to ``handler``."""
    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", handler)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield int(runner.addresses[0][1])
    finally:
        await runner.cleanup()


def local_ingestor_settings(**overrides: Any) -> IngestorSettings:
    """Ingestor settings for a local test server: ``*.demo.test`` is 127.0.0.1 (allowed), no
    politeness delays, a 5 s deadline; ``overrides`` win."""
    base: dict[str, Any] = {
        "allow_private_networks": True,
        "resolve_overrides": {"*.demo.test": "127.0.0.1"},
        "per_host_delay_s": 0.0,
        "per_ip_delay_s": 0.0,
        "total_timeout_s": 5.0,
    }
    return IngestorSettings(**{**base, **overrides})
