"""Ingestor fetch layer: pages/s against a local web, next to a plain aiohttp loop.

A separate process (so it does not share the fetcher's core) serves real pages from
``../shared/data/readability`` (each cut to at most 48 KB, those of at least 15 KB kept)
with aiohttp on 127.0.0.1, under 50 host names (``h0.bench.test`` ... resolved by the
fetcher's ``resolve_overrides``). Both clients fetch the same URLs with the same number
of concurrent workers, in alternating runs:

- StreamCrawl: ``Fetcher.fetch`` → ``RawPage`` (robots.txt per host, politeness
  scheduler, breaker, SSRF guard, charset detection, blake2b hash, zstd compression);
- baseline: ``aiohttp.ClientSession.get`` + ``read()`` of the same URLs (a static
  resolver for the bench host names, aiohttp's DNS cache on), nothing else.

Politeness is switched off for the measurement: ``per_host_delay_s=0`` and
``per_host_concurrency`` equal to the global concurrency (production keeps 0.25 s and
2 per host). Reported: median pages/s, CPU seconds per page of the client process,
and the bench process's peak RSS.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from workers.ingestor import Fetcher
from workers.messages import CrawlRequest
from workers.settings import IngestorSettings
from workers.urls import url_hash

__all__ = ["bench", "load_pages"]

DATA = Path(os.environ.get("STREAMCRAWL_SHARED_DATA", "/work/shared/data")) / "readability/test/test-pages"
HOSTS = 50
PAGE_MIN, PAGE_MAX = 15_000, 48_000


def load_pages() -> list[bytes]:
    """Real article pages of at least 15 KB, longer ones cut to a size spread over 15-48 KB."""
    pages = []
    for i, path in enumerate(sorted(DATA.glob("*/source.html"))):
        body = path.read_bytes()
        if len(body) >= PAGE_MIN:
            pages.append(body[: PAGE_MIN + (i * 7919) % (PAGE_MAX - PAGE_MIN)])
    if not pages:
        raise SystemExit(f"no pages under {DATA}")
    return pages


def _serve(port: int, ready: Any) -> None:
    pages = load_pages()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=pages[int(request.match_info["i"]) % len(pages)], content_type="text/html")

    async def robots(_: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nDisallow: /private/\n")

    app = web.Application()
    app.router.add_get("/p/{i}", page)
    app.router.add_get("/robots.txt", robots)
    ready.set()
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, handle_signals=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _StaticResolver(AbstractResolver):
    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        return [
            ResolveResult(hostname=host, host="127.0.0.1", port=port, family=socket.AF_INET, proto=0, flags=0)
        ]

    async def close(self) -> None:
        return None


def _urls(port: int, n: int) -> list[str]:
    return [f"http://h{i % HOSTS}.bench.test:{port}/p/{i}" for i in range(n)]


async def _drive(
    urls: list[str], concurrency: int, one: Callable[[str], Awaitable[int]]
) -> tuple[float, float, int]:
    """Run ``one`` over ``urls`` with ``concurrency`` workers: (seconds, cpu seconds, bytes)."""
    it = iter(urls)
    total = 0

    async def worker() -> None:
        nonlocal total
        for url in it:
            size = await one(url)  # not `total += await ...`: that reads total before awaiting
            total += size

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - wall, time.process_time() - cpu, total


async def _run_aiohttp(urls: list[str], concurrency: int) -> tuple[float, float, int]:
    connector = aiohttp.TCPConnector(limit=concurrency, resolver=_StaticResolver())
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> int:
            async with session.get(url) as response:
                return len(await response.read())

        await _drive(urls[: concurrency * 2], concurrency, one)  # warm the pool
        return await _drive(urls, concurrency, one)


async def _run_fetcher(urls: list[str], concurrency: int) -> tuple[float, float, int]:
    settings = IngestorSettings(
        concurrency=concurrency,
        per_host_concurrency=concurrency,
        per_host_delay_s=0.0,
        allow_private_networks=True,
        resolve_overrides={"*.bench.test": "127.0.0.1"},
    )
    async with Fetcher(settings, max_page_bytes=5 * 1024 * 1024) as fetcher:

        async def one(url: str) -> int:
            request = CrawlRequest(url=url, url_hash=url_hash(url), host="", requested_at=0.0)
            page = await fetcher.fetch(request)
            assert page.status == 200 and page.html_zstd, page
            return page.body_bytes

        await _drive(urls[: concurrency * 2], concurrency, one)  # warm: robots.txt, pool
        return await _drive(urls, concurrency, one)


def _measure(port: int, concurrency: int, n: int, repeats: int) -> dict[str, Any]:
    urls = _urls(port, n)
    ours: list[tuple[float, float, int]] = []
    base: list[tuple[float, float, int]] = []
    for _ in range(repeats):  # alternate, so drifting machine load hits both alike
        base.append(asyncio.run(_run_aiohttp(urls, concurrency)))
        ours.append(asyncio.run(_run_fetcher(urls, concurrency)))
    return {
        "ours_pps": statistics.median(n / wall for wall, _, _ in ours),
        "base_pps": statistics.median(n / wall for wall, _, _ in base),
        "ours_cpu": statistics.median(cpu / n for _, cpu, _ in ours),
        "base_cpu": statistics.median(cpu / n for _, cpu, _ in base),
        "bytes": ours[0][2] / n,
    }


def bench(*, quick: bool) -> list[dict[str, Any]]:
    port = _free_port()
    ctx = multiprocessing.get_context("spawn")
    ready = ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        ready.wait(30)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:  # wait until it accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        plan = [(100, 300, 1)] if quick else [(100, 4000, 3), (500, 4000, 3)]
        rows: list[dict[str, Any]] = []
        for concurrency, n, repeats in plan:
            m = _measure(port, concurrency, n, repeats)
            print(f"ingestor C={concurrency}: {m}", file=sys.stderr)
            note = (
                f"{n} real pages (~{m['bytes'] / 1000:.0f} KB) over {HOSTS} hosts, median of {repeats}, "
                f"server in its own process; politeness delay 0 for the bench"
            )
            ratio = m["ours_pps"] / m["base_pps"]
            rows.append(
                {
                    "section": "ingestor",
                    "metric": f"pages/s at concurrency {concurrency}",
                    "value": m["ours_pps"],
                    "baseline": "plain aiohttp fetch loop",
                    "baseline_value": m["base_pps"],
                    "ratio": ratio,
                    "target": ">= 1,000 pages/s and >= 0.8x aiohttp",
                    "met": m["ours_pps"] >= 1000 and ratio >= 0.8,
                    "note": note,
                }
            )
            rows.append(
                {
                    "section": "ingestor",
                    "metric": f"CPU ms/page at concurrency {concurrency}",
                    "value": m["ours_cpu"] * 1000,
                    "baseline": "plain aiohttp fetch loop",
                    "baseline_value": m["base_cpu"] * 1000,
                    "target": "",
                    "note": "client process only; ours includes zstd + blake2b + charset per page",
                }
            )
        rows.append(
            {
                "section": "ingestor",
                "metric": "peak RSS (MB)",
                "value": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "baseline": "",
                "baseline_value": None,
                "target": "",
                "note": "bench process (both clients), server excluded",
            }
        )
        return rows
    finally:
        server.terminate()
        server.join(10)


if __name__ == "__main__":
    for row in bench(quick="--quick" in sys.argv):
        print(row, file=sys.stderr)
