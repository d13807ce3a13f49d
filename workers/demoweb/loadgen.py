"""A plain aiohttp fetch loop over demo URLs: the server's load test and the ingestor's baseline.

``python -m workers.demoweb bench --port P --concurrency 100 --seconds 10`` fetches
generated article/listing URLs in a loop and prints requests/s and MB/s as JSON.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp

from workers.demoweb.hosts import DemoResolver

__all__ = ["LoadResult", "fetch_loop"]


@dataclass(slots=True)
class LoadResult:
    requests: int = 0
    bytes: int = 0
    errors: int = 0
    seconds: float = 0.0
    statuses: Counter[int] = field(default_factory=Counter)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "seconds": round(self.seconds, 2),
            "req_per_s": round(self.rps, 1),
            "mb_per_s": round(self.bytes / self.seconds / 1e6, 1) if self.seconds else 0.0,
            "avg_kb": round(self.bytes / self.requests / 1024, 1) if self.requests else 0.0,
            "statuses": dict(self.statuses),
        }


async def fetch_loop(
    urls: Sequence[str], *, concurrency: int = 100, duration_s: float = 10.0, warmup: bool = True
) -> LoadResult:
    """Fetch ``urls`` round-robin with ``concurrency`` workers for ``duration_s`` seconds.

    With ``warmup`` every URL is fetched once first (fills the server's page cache).
    """
    connector = aiohttp.TCPConnector(limit=concurrency, resolver=DemoResolver(), ttl_dns_cache=None)
    result = LoadResult()
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def get(url: str) -> tuple[int, int]:
            async with session.get(url, allow_redirects=False) as resp:
                body = await resp.read()
                return resp.status, len(body)

        if warmup:
            sem = asyncio.Semaphore(concurrency)

            async def warm(url: str) -> None:
                async with sem:
                    await get(url)

            await asyncio.gather(*(warm(u) for u in urls), return_exceptions=True)
        loop = asyncio.get_running_loop()
        start = loop.time()
        deadline = start + duration_s
        counter = iter(range(1 << 62))

        async def worker() -> None:
            while loop.time() < deadline:
                url = urls[next(counter) % len(urls)]
                try:
                    status, size = await get(url)
                except (aiohttp.ClientError, TimeoutError):
                    result.errors += 1
                    continue
                result.requests += 1
                result.bytes += size
                result.statuses[status] += 1

        t0 = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        result.seconds = time.perf_counter() - t0
    return result
