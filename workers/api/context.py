"""What every request handler shares: settings, the page store (its one asyncpg pool and S3
client), the rate limiter and the key-usage recorder. Built once by the app's lifespan."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

import asyncpg
from fastapi import Request

from workers.api.keys import touch_keys
from workers.api.ratelimit import KeyRateLimiter
from workers.errors import DependencyUnavailable
from workers.settings import Settings
from workers.storage import PageStore
from workers.storage.pages import PG_CONNECTION_ERRORS

__all__ = ["ApiContext", "get_context"]

log = logging.getLogger(__name__)
_TOUCH_EVERY_S = 60.0


@dataclass(slots=True)
class ApiContext:
    settings: Settings
    store: PageStore
    limiter: KeyRateLimiter
    used_keys: set[str] = field(default_factory=set)
    _toucher: asyncio.Task[None] | None = None

    @property
    def timeout_s(self) -> float:
        return self.settings.api.query_timeout_s

    def start_background(self) -> None:
        self._toucher = asyncio.create_task(self._touch_loop(), name="api-key-last-used")

    async def _flush_used(self) -> None:
        used, self.used_keys = self.used_keys, set()
        if used:
            try:
                await touch_keys(self.store.pool, sorted(used))
            except (*PG_CONNECTION_ERRORS, asyncpg.PostgresError, DependencyUnavailable) as exc:
                log.warning("could not record API key use: %s", exc)

    async def _touch_loop(self) -> None:
        while True:
            await asyncio.sleep(_TOUCH_EVERY_S)
            await self._flush_used()

    async def close(self) -> None:
        task, self._toucher = self._toucher, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._flush_used()


def get_context(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.ctx
    return ctx
