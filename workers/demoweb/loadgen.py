"""A plain aiohttp fetch loop over demo URLs: the server's load test and the ingestor's baseline.

``python -m workers.demoweb bench --port P --concurrency 100 --seconds 10 [--clients 2]
[--server-pid PID]`` fetches generated article/listing URLs in a loop (from ``--clients``
processes) and prints requests/s and MB/s as JSON; with ``--server-pid`` it also reports
the CPU seconds the server process tree used and requests per server CPU second, which
stays meaningful on a busy machine where wall-clock rates do not.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

import aiohttp

from workers.demoweb.hosts import DemoResolver
from workers.demoweb.urls import demo_urls

__all__ = ["LoadResult", "fetch_loop", "run_bench", "tree_cpu_seconds"]


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


def _tree(pid: int) -> list[int]:
    try:
        kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [p for k in kids for p in _tree(int(k))]


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process and its live descendants (Linux /proc)."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _client(urls: list[str], concurrency: int, seconds: float) -> LoadResult:
    return asyncio.run(fetch_loop(urls, concurrency=concurrency, duration_s=seconds, warmup=False))


def run_bench(
    *,
    port: int,
    hosts: int = 60,
    per_host: int = 10,
    concurrency: int = 100,
    seconds: float = 10.0,
    clients: int = 1,
    warmup_s: float = 3.0,
    server_pid: int | None = None,
) -> dict[str, object]:
    """Warm the server's caches, then load it from ``clients`` processes; a JSON-able summary."""
    items = demo_urls(port=port, hosts=hosts, per_host=per_host, include_failures=False, spa_share=0)
    urls = [i.url for i in items]
    asyncio.run(fetch_loop(urls, concurrency=concurrency, duration_s=warmup_s))
    cpu0 = tree_cpu_seconds(server_pid) if server_pid else 0.0
    with ProcessPoolExecutor(clients, mp_context=get_context("spawn")) as pool:
        parts = list(pool.map(_client, [urls] * clients, [concurrency] * clients, [seconds] * clients))
    total = LoadResult(seconds=max(p.seconds for p in parts))
    for part in parts:
        total.requests += part.requests
        total.bytes += part.bytes
        total.errors += part.errors
        total.statuses.update(part.statuses)
    out = total.to_json()
    out.update(concurrency=concurrency, clients=clients, urls=len(urls))
    if server_pid:
        cpu = tree_cpu_seconds(server_pid) - cpu0
        out.update(
            server_cpu_s=round(cpu, 2), req_per_server_cpu_s=round(total.requests / cpu) if cpu else None
        )
    return out
