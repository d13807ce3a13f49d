"""Per-key rate limits: a sliding-window counter of requests per second, per API process.

Built on ``limits`` (its in-memory async storage). A key's limit is its own ``rate_per_s``
(``streamcrawl api-key create --rate N``) or ``STREAMCRAWL_API_RATE_LIMIT_PER_S``. With
several API replicas each counts on its own: the limit a client sees is N x replicas.
"""

from __future__ import annotations

import math
import time

from limits import RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

__all__ = ["KeyRateLimiter"]


class KeyRateLimiter:
    def __init__(self, *, default_per_s: int) -> None:
        self.default_per_s = max(1, default_per_s)
        self._limiter = SlidingWindowCounterRateLimiter(MemoryStorage())
        self._items: dict[int, RateLimitItemPerSecond] = {}

    def _item(self, per_s: int) -> RateLimitItemPerSecond:
        item = self._items.get(per_s)
        if item is None:
            item = self._items[per_s] = RateLimitItemPerSecond(per_s, 1, namespace="apikey")
        return item

    async def acquire(self, key_id: str, per_s: int | None) -> float | None:
        """Count one request of ``key_id``; None when allowed, else seconds until it may retry."""
        item = self._item(per_s or self.default_per_s)
        if await self._limiter.hit(item, key_id):
            return None
        stats = await self._limiter.get_window_stats(item, key_id)
        return max(0.0, stats.reset_time - time.time())

    @staticmethod
    def retry_after_header(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
