"""Discovery benchmark: link handling per core, the URL-seen store at 1,000,000 URLs, the daemon's RSS.

1. **Links per CPU second** on the outlinks of the 130 real readability pages (extracted once
   by our extractor): :func:`workers.discovery.links.page_links` — canonicalisation, nofollow,
   scope — against what Scrapy does per extracted link before it schedules a request: w3lib
   ``canonicalize_url``, the offsite check (``url_is_from_any_domain``), ``Request`` + request
   ``fingerprint`` and its in-memory dupefilter set.
2. **The URL-seen store** (``crawl_urls`` in PostgreSQL) filled to 1,000,000 URLs by
   :func:`workers.ledger.admit` in transactions of 2,000 candidates (what discovery sends per
   batch of ~200 pages), insert rate per decile, table + index size; beside Scrapy's dupefilter
   (a Python set of fingerprints, the peer that keeps "seen" in memory): its memory per URL.
3. **The daemon**: the discovery daemon (a subprocess) reads stored pages with 100 new links
   each from ``storage.saved`` until 1,000,000 URLs are admitted and published to
   ``crawl.request``; pages/s, links/s, CPU per page, and its RSS from 10k to 1M URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tracemalloc
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from bench.quality import load_readability
from tests.helpers.services import start_kafka, start_postgres
from workers.extract import extract
from workers.kafka import make_producer
from workers.ledger import BatchSpec, Candidate, admit, create_batch, mark_published
from workers.messages import CrawlContext, Scope, StoredPage, encode, make_headers
from workers.scope import ScopeRules
from workers.settings import KafkaSettings, PostgresSettings, Settings, StackSettings
from workers.stack.environment import settings_env
from workers.storage.migrate import apply_migrations
from workers.topics import STORAGE_SAVED
from workers.urls import url_hash

__all__ = ["bench"]

SECTION = "discovery"
ROOT = Path(__file__).resolve().parents[1]


def _cpu() -> float:
    return time.process_time()


def _real_pages() -> list[StoredPage]:
    pages = []
    scope = Scope(mode="domain", max_depth=3)
    for case in load_readability():
        url = f"https://{case.name}.example.org/article"
        ex = extract(case.source, url=url)
        pages.append(
            StoredPage(
                url=url,
                url_hash=url_hash(url),
                final_url=url,
                status=200,
                route="fast",
                stored_at=0.0,
                batch="bench",
                host=url.split("/")[2],
                outlinks=ex.outlinks,
                ctx=CrawlContext(depth=0, seed=url.split("/")[2], scope=scope),
            )
        )
    return pages


def _links_rows(quick: bool) -> list[dict[str, Any]]:
    from scrapy import Request
    from scrapy.utils.request import fingerprint
    from scrapy.utils.url import url_is_from_any_domain
    from w3lib.url import canonicalize_url

    from workers.discovery.links import page_links

    pages = _real_pages()
    if not pages:
        return [{"section": SECTION, "metric": "links", "note": "../shared/data not found"}]
    links = sum(len(p.outlinks) for p in pages)
    rules = ScopeRules(Scope(mode="domain", max_depth=3))
    rounds = 3 if quick else 15

    def ours() -> float:
        start = _cpu()
        for _ in range(rounds):
            for p in pages:
                page_links(p, rules)
        return _cpu() - start

    def scrapy_peer() -> float:
        start = _cpu()
        for _ in range(rounds):
            seen: set[bytes] = set()
            for p in pages:
                domain = p.host
                for link in p.outlinks:
                    url = canonicalize_url(link)
                    if not url_is_from_any_domain(url, [domain]):
                        continue
                    fp = fingerprint(Request(url))
                    if fp not in seen:
                        seen.add(fp)
        return _cpu() - start

    runs = [(ours(), scrapy_peer()) for _ in range(3)]
    ours_s = sorted(r[0] for r in runs)[1]
    peer_s = sorted(r[1] for r in runs)[1]
    n_pages, n_links = len(pages) * rounds, links * rounds
    return [
        {
            "section": SECTION,
            "metric": "outlinks/s per CPU second (canonicalise + nofollow + scope)",
            "value": n_links / ours_s,
            "baseline": "Scrapy per link: canonicalize_url + offsite check + Request fingerprint + dupefilter set",
            "baseline_value": n_links / peer_s,
            "note": f"{len(pages)} real readability pages, {links} outlinks ({links / len(pages):.0f}/page), "
            f"median of 3 x {rounds} rounds; the URL-seen check itself is in the rows below",
        },
        {
            "section": SECTION,
            "metric": "pages/s per CPU second (link handling)",
            "value": n_pages / ours_s,
            "baseline": "Scrapy, same per-link work",
            "baseline_value": n_pages / peer_s,
        },
    ]


async def _seen_store_rows(pg: PostgresSettings, *, total: int) -> list[dict[str, Any]]:
    from scrapy import Request
    from scrapy.utils.request import fingerprint

    conn = await asyncpg.connect(pg.dsn())
    try:
        await apply_migrations(conn)
        batch = f"bench-{uuid.uuid4().hex[:6]}"
        scope = Scope(mode="any", max_depth=5)
        await create_batch(conn, BatchSpec(batch=batch, origin="cli", scope=scope))
        await mark_published(conn, batch)
        chunk = 2_000
        deciles: list[float] = []
        t_decile = time.perf_counter()
        admitted = 0
        for start in range(0, total, chunk):
            cands = [
                Candidate(
                    url=(u := f"https://h{i % 5000}.example.org/p/{i}"),
                    url_hash=url_hash(u),
                    host=f"h{i % 5000}.example.org",
                    depth=1,
                    source="link",
                    parent="p",
                )
                for i in range(start, start + chunk)
            ]
            async with conn.transaction():
                result = await admit(conn, batch=batch, scope=scope, candidates=cands)
            admitted += len(result.admitted)
            if (start + chunk) % (total // 10) == 0:
                now = time.perf_counter()
                deciles.append((total // 10) / (now - t_decile))
                t_decile = now
        # Re-offering URLs already seen (the common case once a site is crawled).
        t0 = time.perf_counter()
        for start in range(0, min(total, 200_000), chunk):
            cands = [
                Candidate(
                    url=(u := f"https://h{i % 5000}.example.org/p/{i}"),
                    url_hash=url_hash(u),
                    host=f"h{i % 5000}.example.org",
                    depth=1,
                    source="link",
                )
                for i in range(start, start + chunk)
            ]
            async with conn.transaction():
                await admit(conn, batch=batch, scope=scope, candidates=cands)
        seen_rate = min(total, 200_000) / (time.perf_counter() - t0)
        size = await conn.fetchval("SELECT pg_total_relation_size('crawl_urls')")
        rows_now = await conn.fetchval("SELECT count(*) FROM crawl_urls WHERE batch = $1", batch)
        await conn.execute("DELETE FROM crawl_urls WHERE batch = $1", batch)
    finally:
        await conn.close()

    # Scrapy's RFPDupeFilter keeps a set of 20-byte fingerprints in memory.
    gc.collect()
    tracemalloc.start()
    seen = {
        fingerprint(Request(f"https://h{i % 5000}.example.org/p/{i}")) for i in range(min(total, 200_000))
    }
    peak = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    per_url_peer = peak / len(seen)
    del seen
    first, last = deciles[0], deciles[-1]
    return [
        {
            "section": SECTION,
            "metric": f"URL-seen store inserts/s, first vs last tenth of {total:,}",
            "value": last,
            "baseline": "the same store, first tenth",
            "baseline_value": first,
            "target": "flat (ratio >= 0.8)",
            "met": last / first >= 0.8,
            "note": f"admit() in transactions of {chunk} new URLs over 5,000 hosts; deciles "
            + ", ".join(f"{d:,.0f}" for d in deciles)
            + f"; {admitted:,} admitted, {rows_now:,} rows",
        },
        {
            "section": SECTION,
            "metric": "URL-seen store: already-seen URLs checked/s",
            "value": seen_rate,
            "note": f"{min(total, 200_000):,} URLs offered again after {total:,} were stored: none admitted",
        },
        {
            "section": SECTION,
            "metric": "URL-seen store bytes per URL (PostgreSQL table + indexes)",
            "value": size / max(1, rows_now),
            "baseline": "Scrapy dupefilter: Python set of fingerprints, bytes of RAM per URL",
            "baseline_value": per_url_peer,
            "note": f"{size / 2**20:,.0f} MB on disk for {rows_now:,} URLs, durable and shared by every "
            "discovery process; the peer's set lives in one process's memory and dies with it",
        },
    ]


def _rss_mb(pid: int, *, field: str = "VmRSS:") -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _daemon_rows(
    kafka: KafkaSettings, pg: PostgresSettings, base: Path, *, pages: int
) -> list[dict[str, Any]]:
    links = 100
    batch = f"bench-d-{uuid.uuid4().hex[:6]}"
    scope = Scope(mode="any", max_depth=5)
    conn = await asyncpg.connect(pg.dsn())
    await apply_migrations(conn)
    await create_batch(conn, BatchSpec(batch=batch, origin="cli", scope=scope))
    await mark_published(conn, batch)
    settings = Settings(stack=StackSettings(data_dir=base / "data"), kafka=kafka, postgres=pg)
    env = {
        **os.environ,
        **settings_env(settings),
        "STREAMCRAWL_METRICS_ENABLED": "false",
        "PYTHONUNBUFFERED": "1",
    }
    log = (base / "discovery.log").open("ab")
    proc = subprocess.Popen(  # noqa: ASYNC220 - started once, before the measured window
        [sys.executable, "-m", "workers.discovery"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
    )
    producer = make_producer(kafka, client_id="bench-discovery")
    await producer.start()
    try:
        for p in range(pages):
            host = f"h{p % 200}.example.org"
            page_url = f"https://{host}/page/{p}"
            page = StoredPage(
                url=page_url,
                url_hash=url_hash(page_url),
                final_url=page_url,
                status=200,
                route="fast",
                stored_at=time.time(),
                batch=batch,
                host=host,
                outlinks=[f"https://{host}/page/{p}/link/{k}?utm_source=x" for k in range(links)],
                ctx=CrawlContext(depth=0, seed=host, scope=scope),
            )
            await producer.send(
                STORAGE_SAVED.name, encode(page), key=page.url_hash.encode(), headers=make_headers("b")
            )
        await producer.flush()
        started = time.monotonic()
        cpu0 = _cpu_s(proc.pid)
        target = pages * links
        # RSS as the crawl grows: at 10k URLs (~100 pages in), then at each tenfold size and
        # halfway between, up to the end.
        marks = [m for m in (10_000, 50_000, 100_000, 500_000) if m < target]
        curve: dict[int, float] = {}
        deadline = started + 1800
        while time.monotonic() < deadline:
            done = await conn.fetchval("SELECT discovered FROM crawl_batches WHERE batch = $1", batch) or 0
            while marks and done >= marks[0]:
                curve[marks.pop(0)] = _rss_mb(proc.pid)
            if done >= target:
                break
            if proc.poll() is not None:
                raise RuntimeError("discovery daemon died: " + (base / "discovery.log").read_text()[-2000:])
            await asyncio.sleep(0.5)
        elapsed = time.monotonic() - started
        cpu = _cpu_s(proc.pid) - cpu0
        rss_end = _rss_mb(proc.pid)
        hwm_end = _rss_mb(proc.pid, field="VmHWM:")
        published = await conn.fetchval(
            "SELECT count(*) FROM crawl_urls WHERE batch = $1 AND published", batch
        )
    finally:
        await producer.stop()
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            await asyncio.to_thread(proc.wait, 30)
        if proc.poll() is None:
            proc.kill()
        await conn.close()
    return [
        {
            "section": SECTION,
            "metric": "daemon pages/s (stored pages with 100 new links each)",
            "value": pages / elapsed,
            "note": f"{pages:,} pages -> {published:,} URLs admitted and published to crawl.request, "
            f"{pages * links / elapsed:,.0f} links/s; CPU {cpu / pages * 1000:.2f} ms/page "
            f"({pages / cpu:,.0f} pages per CPU second) in the daemon",
        },
        {
            "section": SECTION,
            "metric": f"daemon RSS (MB) at {published:,} URLs",
            "value": rss_end,
            "baseline": "the same daemon at 10,000 URLs",
            "baseline_value": curve.get(10_000),
            "target": "flat (ratio <= 1.2)",
            "met": bool(curve.get(10_000)) and rss_end / curve[10_000] <= 1.2,
            "note": "RSS by URLs admitted: "
            + ", ".join(f"{n:,}: {mb:.0f} MB" for n, mb in sorted(curve.items()))
            + f", {published:,}: {rss_end:.0f} MB (peak {hwm_end:.0f}); "
            "the seen store lives in PostgreSQL, not in the daemon",
        },
    ]


async def bench(*, quick: bool) -> list[dict[str, Any]]:
    rows = _links_rows(quick)
    with contextlib.ExitStack() as services:
        base = Path(tempfile.mkdtemp(prefix="streamcrawl-bench-discovery-"))
        services.callback(shutil.rmtree, base, ignore_errors=True)
        os.chmod(base, 0o711)
        pg_c, pg = start_postgres(base / "pg")
        services.callback(pg_c.stop)
        rows += await _seen_store_rows(pg, total=100_000 if quick else 1_000_000)
        kafka_c, kafka, _ = start_kafka(base / "kafka")
        services.callback(kafka_c.stop)
        rows += await _daemon_rows(kafka, pg, base, pages=200 if quick else 10_000)
    return rows
