"""Ingestor fetch layer: pages/s against a local web, next to plain aiohttp loops.

A separate process (so it does not share the fetcher's core) serves real pages from
``../shared/data/readability`` (those of at least 15 KB, longer ones cut to a size spread
over 15-48 KB) with aiohttp on 127.0.0.1, over plain HTTP and over TLS (HTTP/1.1, a CA
generated for the run), under 50 host names (``h0.bench.test`` ... resolved by the
fetcher's ``resolve_overrides``). The clients fetch the same URLs with the same number of
concurrent workers, in alternating runs, each in a fresh event loop:

- StreamCrawl: ``Fetcher.fetch`` → ``RawPage`` (robots.txt per host, politeness scheduler,
  breaker, SSRF guard, charset detection, blake2b hash, zstd compression);
- baseline "plain aiohttp": ``ClientSession.get`` + ``read()``, nothing else (a static
  resolver for the bench host names, aiohttp's DNS cache on);
- baseline "aiohttp + same digest": the same loop plus ``compress_html`` and blake2b of
  each body, i.e. the per-page work the RawPage contract asks for, without our HTTP layer.

Politeness is switched off for the measurement: ``per_host_delay_s=0`` and
``per_host_concurrency`` / ``per_ip_concurrency`` equal to the global concurrency
(production keeps 0.25 s and 2 per host, 8 per IP address; every bench host is 127.0.0.1).
The load governor stays on (it lowers the requests in flight while the event loop lags). Reported: median pages/s, CPU ms per page of the client process (all threads)
and of its event-loop thread alone, and the bench process's peak RSS.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import multiprocessing
import os
import resource
import socket
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from workers.ingestor import Fetcher
from workers.messages import CrawlRequest, compress_html
from workers.settings import IngestorSettings
from workers.urls import url_hash

__all__ = ["bench", "load_pages", "make_certificates"]

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


def make_certificates(directory: Path, *, domain: str = "demo.test") -> tuple[Path, Path, Path]:
    """(CA bundle, server certificate, server key) for ``*.<domain>``, written as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "StreamCrawl test CA")])
    usage = x509.KeyUsage(
        digital_signature=True,
        key_cert_sign=True,
        crl_sign=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        encipher_only=False,
        decipher_only=False,
    )
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{domain}")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, cert_path, key_path = directory / "ca.pem", directory / "cert.pem", directory / "key.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_path, cert_path, key_path


def _serve(port: int, tls_port: int, cert: str, key: str, ready: Any) -> None:
    pages = load_pages()

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=pages[int(request.match_info["i"]) % len(pages)], content_type="text/html")

    async def robots(_: web.Request) -> web.Response:
        return web.Response(text="User-agent: *\nDisallow: /private/\n")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/p/{i}", page)
        app.router.add_get("/robots.txt", robots)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
        await web.TCPSite(runner, "127.0.0.1", port).start()
        await web.TCPSite(runner, "127.0.0.1", tls_port, ssl_context=context).start()
        ready.set()
        await asyncio.Event().wait()  # until terminated

    asyncio.run(main())


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


def _urls(scheme: str, port: int, n: int) -> list[str]:
    return [f"{scheme}://h{i % HOSTS}.bench.test:{port}/p/{i}" for i in range(n)]


@dataclass
class _Run:
    wall: float
    cpu: float
    loop_cpu: float
    bytes: int


async def _drive(urls: list[str], concurrency: int, one: Callable[[str], Awaitable[int]]) -> _Run:
    """Run ``one`` over ``urls`` with ``concurrency`` workers."""
    it = iter(urls)
    total = 0

    async def worker() -> None:
        nonlocal total
        for url in it:
            size = await one(url)  # not `total += await ...`: that reads total before awaiting
            total += size

    wall, cpu, loop_cpu = time.perf_counter(), time.process_time(), time.thread_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return _Run(time.perf_counter() - wall, time.process_time() - cpu, time.thread_time() - loop_cpu, total)


async def _run_aiohttp(
    urls: list[str], concurrency: int, *, digest: bool = False, ca: Path | None = None
) -> _Run:
    context = ssl.create_default_context(cafile=str(ca)) if ca else None
    connector = aiohttp.TCPConnector(limit=concurrency, resolver=_StaticResolver(), ssl=context or True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(url: str) -> int:
            async with session.get(url) as response:
                body = await response.read()
            if digest:
                compress_html(body)
                hashlib.blake2b(body, digest_size=16).hexdigest()
            return len(body)

        await _drive(urls[: min(len(urls), concurrency * 2)], concurrency, one)  # warm the pool
        return await _drive(urls, concurrency, one)


async def _run_fetcher(urls: list[str], concurrency: int, **options: Any) -> _Run:
    settings = IngestorSettings(
        concurrency=concurrency,
        per_host_concurrency=concurrency,
        per_host_delay_s=0.0,
        per_ip_concurrency=concurrency,
        per_ip_delay_s=0.0,
        allow_private_networks=True,
        resolve_overrides={"*.bench.test": "127.0.0.1"},
        **options,
    )
    async with Fetcher(settings, max_page_bytes=5 * 1024 * 1024) as fetcher:

        async def one(url: str) -> int:
            request = CrawlRequest(url=url, url_hash=url_hash(url), host="", requested_at=0.0)
            page = await fetcher.fetch(request)
            assert page.status == 200 and page.html_zstd, page
            return page.body_bytes

        await _drive(urls[: min(len(urls), concurrency * 2)], concurrency, one)  # warm: robots.txt, pool
        return await _drive(urls, concurrency, one)


Client = Callable[[list[str], int], Coroutine[Any, Any, _Run]]


def _measure(clients: dict[str, Client], urls: list[str], concurrency: int, repeats: int) -> dict[str, Any]:
    runs: dict[str, list[_Run]] = {name: [] for name in clients}
    for _ in range(repeats):  # alternate, so drifting machine load hits every client alike
        for name, client in clients.items():
            runs[name].append(asyncio.run(client(urls, concurrency)))
    n = len(urls)
    out: dict[str, Any] = {"bytes": runs[next(iter(runs))][0].bytes / n}
    for name, items in runs.items():
        out[name] = {
            "pps": statistics.median(n / r.wall for r in items),
            "cpu_ms": statistics.median(r.cpu / n for r in items) * 1000,
            "loop_ms": statistics.median(r.loop_cpu / n for r in items) * 1000,
            "runs": [round(n / r.wall) for r in items],
        }
    print(f"ingestor C={concurrency} n={n}: {out}", file=sys.stderr)
    return out


def _row(metric: str, value: float, baseline: str, base: float, **extra: Any) -> dict[str, Any]:
    return {"section": "ingestor", "metric": metric, "value": value, "baseline": baseline,
            "baseline_value": base, "target": "", **extra}  # fmt: skip


def _http_rows(m: dict[str, Any], concurrency: int, n: int, repeats: int) -> list[dict[str, Any]]:
    ours, plain, same = m["fetcher"], m["aiohttp"], m["aiohttp+digest"]
    ratio = ours["pps"] / plain["pps"]
    note = (
        f"{n} real pages (~{m['bytes'] / 1000:.0f} KB) over {HOSTS} hosts, plain HTTP, median of {repeats} "
        f"(runs: ours {ours['runs']}, aiohttp {plain['runs']}); server in its own process on this "
        f"2-core machine; politeness delay 0 for the bench. Where the gap is (perf stat, "
        f"instructions per 32 KB page): a whole plain aiohttp request ~0.37M; RawPage's zstd-3 "
        f"~0.89M + blake2b ~0.44M (moved to 2 threads); httpx request/response objects ~0.3M"
    )
    return [
        _row(f"pages/s, concurrency {concurrency}", ours["pps"], "plain aiohttp fetch loop", plain["pps"],
             ratio=ratio, target=">= 1,000 pages/s and >= 0.8x aiohttp",
             met=ours["pps"] >= 1000 and ratio >= 0.8, note=note),
        _row(f"pages/s, concurrency {concurrency} (same per-page work)", ours["pps"],
             "aiohttp loop + compress_html + blake2b", same["pps"],
             note="baseline does the RawPage contract's zstd + hash inline, so the gap is our HTTP layer"),
        _row(f"CPU ms/page, concurrency {concurrency}", ours["cpu_ms"], "plain aiohttp fetch loop",
             plain["cpu_ms"], note=f"client process, all threads; aiohttp + digest: {same['cpu_ms']:.3f}"),
        _row(f"event-loop thread CPU ms/page, concurrency {concurrency}", ours["loop_ms"],
             "aiohttp loop + compress_html + blake2b", same["loop_ms"],
             note="zstd + blake2b of bodies >= 16 KiB run on two worker threads; "
                  f"1000/x = pages/s one loop core can drive (~{1000 / ours['loop_ms']:.0f})"),
    ]  # fmt: skip


def _https_rows(m: dict[str, Any], concurrency: int, n: int, repeats: int) -> list[dict[str, Any]]:
    plain = m["aiohttp"]
    note = f"{n} pages over TLS (HTTP/1.1 server), median of {repeats}"
    return [
        _row(f"HTTPS pages/s, concurrency {concurrency}, http2=true (httpx/httpcore transport)",
             m["fetcher h2"]["pps"], "plain aiohttp fetch loop over TLS", plain["pps"],
             note=note + f"; runs {m['fetcher h2']['runs']} vs {plain['runs']}; httpcore's pool is the limit"),
        _row(f"HTTPS pages/s, concurrency {concurrency}, http2=false (aiohttp transport)",
             m["fetcher h1"]["pps"], "plain aiohttp fetch loop over TLS", plain["pps"],
             note=note + f"; runs {m['fetcher h1']['runs']}"),
    ]  # fmt: skip


def bench(*, quick: bool) -> list[dict[str, Any]]:
    port, tls_port = _free_port(), _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        ca, cert, key = make_certificates(Path(tmp), domain="bench.test")
        ctx = multiprocessing.get_context("spawn")
        ready = ctx.Event()
        server = ctx.Process(target=_serve, args=(port, tls_port, str(cert), str(key), ready), daemon=True)
        server.start()
        try:
            if not ready.wait(60):
                raise RuntimeError("bench web server did not start")
            return _bench(port, tls_port, ca, quick=quick)
        finally:
            server.terminate()
            server.join(10)


def _bench(port: int, tls_port: int, ca: Path, *, quick: bool) -> list[dict[str, Any]]:
    http_plan = [(50, 200, 1)] if quick else [(100, 2000, 5), (500, 2000, 5)]
    https_plan = (20, 60, 1) if quick else (100, 1000, 5)
    rows: list[dict[str, Any]] = []
    http_clients: dict[str, Client] = {
        "aiohttp": _run_aiohttp,
        "aiohttp+digest": lambda u, c: _run_aiohttp(u, c, digest=True),
        "fetcher": _run_fetcher,
    }
    for concurrency, n, repeats in http_plan:
        m = _measure(http_clients, _urls("http", port, n), concurrency, repeats)
        rows += _http_rows(m, concurrency, n, repeats)
    https_clients: dict[str, Client] = {
        "aiohttp": lambda u, c: _run_aiohttp(u, c, ca=ca),
        "fetcher h2": lambda u, c: _run_fetcher(u, c, ca_bundle=ca, http2=True),
        "fetcher h1": lambda u, c: _run_fetcher(u, c, ca_bundle=ca, http2=False),
    }
    concurrency, n, repeats = https_plan
    m = _measure(https_clients, _urls("https", tls_port, n), concurrency, repeats)
    rows += _https_rows(m, concurrency, n, repeats)
    rows.append(
        _row("peak RSS (MB)", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "", 0.0,
             baseline_value=None, note="bench process (all clients, fresh event loop per run), server excluded")
    )  # fmt: skip
    return rows


if __name__ == "__main__":
    for row in bench(quick="--quick" in sys.argv):
        print(row, file=sys.stderr)
