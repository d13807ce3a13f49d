"""Read API: search latency at 100k stored pages, GET /pages/{id} requests/s, and what the
search vector costs the storage writer's UPSERT.

The bench starts its own PostgreSQL (durable) and SeaweedFS (bench/stage_storage.py's
``services``), loads ``pages`` rows (quick: 2,000; full: 100,000) whose text is built from
the paragraphs of the 130 real articles of ``../shared/data/readability`` (three per page,
so word frequencies are those of real prose) plus two marker words of known frequency
(``grpNN``: 1 % of pages, ``tokNNNNN``: 1 page), and runs the API as its own process
(``python -m workers.api``, as supervisord does). Rows are written by the storage writer's
UPSERT statement (plus ``text`` and ``language``); no S3 objects are needed for these routes.

Measured in the same run, each API figure beside a plain asyncpg query of the same rows:

- search latency p50/p99, one request at a time, for a word in ~all pages, one in ~10 %,
  a 1 % marker, a one-page marker, a two-word query, a host filter, and the newest-first
  listing; the baseline runs the API's own statement (``build_search``) through asyncpg;
- ``GET /pages/{url_hash}`` requests/s with 16 in flight (random stored pages) vs asyncpg
  ``fetchrow`` of the API's metadata statement (``page_sql``) with 16 in flight on a pool of
  the same size; the HTTP client (aiohttp) runs in the bench process on the same 2 cores;
- the storage writer's batched UPSERT (200 pages, with ``text``) into ``pages`` as migration
  0020 leaves it (the search vector in ``page_search``, kept by triggers) beside ``pages``
  before 0020 (no search vector) and a stored generated column in ``pages``: new pages, an
  unchanged redelivery, and the fetched_at-only update of a 304, rows/s.
"""

from __future__ import annotations

import asyncio
import random
import re
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.stage_storage import load_corpus, services
from tests.helpers.api import ApiProcess, make_key
from workers.api.pages import page_sql
from workers.api.search import SearchQuery, build_search
from workers.messages import ProcessedPage
from workers.settings import ApiSettings, PostgresSettings, Settings
from workers.storage.migrate import apply_migrations
from workers.storage.pages import UPSERT_SQL, columns_of
from workers.storage.plan import ObjectRefs
from workers.urls import url_hash

__all__ = ["bench"]

SECTION = "API (search, page reads)"
HOSTS = 200
_WORD = re.compile(r"[a-z]{4,}")


# -- corpus -------------------------------------------------------------------------------------


def _paragraphs() -> list[str]:
    out = []
    for _html, markdown, _links, _title in load_corpus():
        out += [p.strip() for p in markdown.split("\n\n") if len(p.strip()) > 200]
    return out


def _pages(n: int, paragraphs: list[str], *, seed: int = 7) -> list[ProcessedPage]:
    rng = random.Random(seed)
    run = uuid.uuid4().hex[:6]
    now = time.time()
    pages = []
    for i in range(n):
        host = f"site{i % HOSTS}.bench.test"
        url = f"https://{host}/{run}/{i}"
        text = " ".join(rng.sample(paragraphs, 3)) + f" grp{i % 100:02d} tok{i:05d}"
        pages.append(
            ProcessedPage(
                url=url,
                url_hash=url_hash(url),
                host=host,
                final_url=url,
                status=200,
                route="fast" if i % 10 else "rich",
                score=100,
                fetched_at=now - i,
                processed_at=now - i,
                content_hash=f"{i:032x}",
                html_zstd=b"",
                markdown="",
                title=" ".join(text.split()[:8]),
                description=text[:160],
                lang="en",
                outlinks=[],
                word_count=len(text.split()),
                text_hash=f"{i:032x}",
                text=text,
                language="en" if i % 5 else "de",
            )
        )
    return pages


def _doc_words(paragraphs: list[str]) -> dict[str, float]:
    """Estimated share of pages containing each word (a page is 3 paragraphs)."""
    df = Counter(w for p in paragraphs for w in set(_WORD.findall(p.lower())))
    return {w: 1 - (1 - c / len(paragraphs)) ** 3 for w, c in df.items()}


def _word_near(shares: dict[str, float], target: float) -> str:
    return min(shares, key=lambda w: (abs(shares[w] - target), w))


# -- the storage writer's UPSERT, with text -------------------------------------------------------


def _upsert_into(table: str) -> str:
    """The storage writer's UPSERT_SQL (text and language included), into ``table``."""
    sql = UPSERT_SQL
    for old, new in (
        ("INSERT INTO pages (", f"INSERT INTO {table} ("),
        ("WHERE pages.fetched_at", f"WHERE {table}.fetched_at"),
    ):
        assert sql.count(old) == 1, old
        sql = sql.replace(old, new)
    return sql


async def _upsert(conn: asyncpg.Connection, table: str, pages: Sequence[ProcessedPage]) -> None:
    columns = columns_of(pages, [ObjectRefs()] * len(pages))
    await conn.execute(_upsert_into(table), *columns)


async def _load(pg: PostgresSettings, pages: list[ProcessedPage], *, batch: int = 1_000) -> float:
    conn = await asyncpg.connect(pg.dsn())
    try:
        await apply_migrations(conn)
        started = time.perf_counter()
        for i in range(0, len(pages), batch):
            await _upsert(conn, "pages", pages[i : i + batch])
        # The writer's triggers only queue pages; the storage writer's indexer builds the
        # vectors off its hot path (migration 0022). Build them all before searching.
        while await conn.fetchval("SELECT page_search_index(500)"):
            pass
        await conn.execute("VACUUM ANALYZE pages")
        return time.perf_counter() - started
    finally:
        await conn.close()


_VARIANTS = {
    # pages as it was before migration 0020: the indexes of 0001, no search vector anywhere
    "main": [
        "CREATE TABLE {t} (LIKE pages INCLUDING DEFAULTS)",
        "ALTER TABLE {t} ADD PRIMARY KEY (url_hash)",
        "CREATE INDEX ON {t} (host)",
        "CREATE INDEX ON {t} (batch) WHERE batch IS NOT NULL",
    ],
    # the alternative: a stored generated column in pages, with its GIN index
    "generated": [
        "CREATE TABLE {t} (LIKE pages INCLUDING DEFAULTS INCLUDING INDEXES)",
        "ALTER TABLE {t} ADD COLUMN search tsvector GENERATED ALWAYS AS (pages_search_vector(title, text)) STORED",
        "CREATE INDEX ON {t} USING gin (search)",
    ],
}


async def _write(conn: asyncpg.Connection, table: str, phase: str, pages: Sequence[ProcessedPage]) -> float:
    started = time.perf_counter()
    if phase == "fetched_at":
        await conn.execute(
            f"UPDATE {table} SET fetched_at = fetched_at + interval '1 second', updated_at = now()"
            " WHERE url_hash = ANY($1::text[])",
            [p.url_hash for p in pages],
        )
    else:
        await _upsert(conn, table, pages)
    return time.perf_counter() - started


async def _tsvector_cost(pg: PostgresSettings, paragraphs: list[str], *, quick: bool) -> list[dict[str, Any]]:
    """The storage writer's UPSERT into ``pages`` as migration 0020 leaves it (search vector in
    ``page_search``, kept by triggers) beside ``pages`` before 0020 and a generated column."""
    batches = 4 if quick else 25
    conn = await asyncpg.connect(pg.dsn())
    rates: dict[str, dict[str, float]] = {}
    try:
        await apply_migrations(conn)
        tables = {"ours": "pages"}
        for name, statements in _VARIANTS.items():
            tables[name] = f"bench_upsert_{name}"
            await conn.execute(f"DROP TABLE IF EXISTS {tables[name]}")
            for statement in statements:
                await conn.execute(statement.format(t=tables[name]))
        work = [_pages(200, paragraphs, seed=100 + b) for b in range(batches)]
        for phase in ("new", "unchanged", "fetched_at"):
            elapsed = dict.fromkeys(tables, 0.0)
            for pages in work:  # the variants alternate batch by batch: machine noise hits them alike
                for name, table in tables.items():
                    elapsed[name] += await _write(conn, table, phase, pages)
            for name, seconds in elapsed.items():
                rates.setdefault(name, {})[phase] = 200 * batches / seconds
        for name in _VARIANTS:
            await conn.execute(f"DROP TABLE {tables[name]}")
        await conn.execute("TRUNCATE pages CASCADE")
    finally:
        await conn.close()
    rows = []
    phases = {
        "new": "new pages",
        "unchanged": "an unchanged redelivery",
        "fetched_at": "a 304 (fetched_at-only update)",
    }
    for phase, what in phases.items():
        for variant, label in (
            ("ours", "search vector in page_search (ours)"),
            ("generated", "generated column in pages"),
        ):
            rows.append(
                {
                    "section": SECTION,
                    "metric": f"storage writer UPSERT, {what}, rows/s: {label}",
                    "value": rates[variant][phase],
                    "baseline": "pages before migration 0020 (no search vector)",
                    "baseline_value": rates["main"][phase],
                    "note": f"batches of 200 pages with ~2 KB of text, {batches} batches, variants alternating",
                }
            )
    return rows


# -- API measurements -----------------------------------------------------------------------------


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _latencies(
    session: aiohttp.ClientSession, url: str, params: dict[str, Any], headers: dict[str, str], n: int
) -> tuple[list[float], int]:
    samples = []
    count = 0
    for i in range(n + 3):
        started = time.perf_counter()
        async with session.get(url, params=params, headers=headers) as response:
            body = await response.json()
            assert response.status == 200, body
        if i >= 3:  # warm-up
            samples.append((time.perf_counter() - started) * 1000)
        count = len(body["items"])
    return samples, count


async def _sql_latencies(pool: asyncpg.Pool, query: SearchQuery, n: int) -> list[float]:
    sql, args = build_search(query)
    samples = []
    for i in range(n + 3):
        started = time.perf_counter()
        await pool.fetch(sql, *args)
        if i >= 3:
            samples.append((time.perf_counter() - started) * 1000)
    return samples


async def _search_rows(
    api: ApiProcess, pool: asyncpg.Pool, key: str, shares: dict[str, float], n_pages: int, *, quick: bool
) -> list[dict[str, Any]]:
    common, tenth = _word_near(shares, 0.99), _word_near(shares, 0.10)
    cases: list[tuple[str, dict[str, Any]]] = [
        (f"q={common} (a word in ~all pages)", {"q": common}),
        (f"q={tenth} (~10 % of pages)", {"q": tenth}),
        ("q=grp42 (1 % of pages)", {"q": "grp42"}),
        ("q=tok01234 (one page)", {"q": "tok01234"}),
        (f"q=grp42 {tenth} (two words)", {"q": f"grp42 {tenth}"}),
        (f"q={tenth}&host=site7… (host filter)", {"q": tenth, "host": "site7.bench.test"}),
        ("newest first, no q", {}),
    ]
    n = 10 if quick else 60
    rows = []
    headers = {"Authorization": f"Bearer {key}"}
    async with aiohttp.ClientSession() as session:
        for label, params in cases:
            matches = (
                await pool.fetchval(
                    "SELECT count(*) FROM page_search s JOIN pages p USING (url_hash)"
                    " WHERE s.search @@ websearch_to_tsquery('simple', $1) AND ($2::text IS NULL OR p.host = $2)",
                    params["q"],
                    params.get("host"),
                )
                if "q" in params
                else n_pages
            )
            samples, _count = await _latencies(
                session, f"{api.url}/pages", {**params, "limit": 20}, headers, n
            )
            base = await _sql_latencies(pool, SearchQuery(limit=20, **params), n)
            for q, name in ((0.5, "p50"), (0.99, "p99")):
                rows.append(
                    {
                        "section": SECTION,
                        "metric": f"search {name} latency, ms, {label}, first page of 20",
                        "value": _pct(samples, q),
                        "baseline": "asyncpg, the API's own statement",
                        "baseline_value": _pct(base, q),
                        "note": f"{matches:,} of {n_pages:,} pages match; {n} sequential requests",
                    }
                )
    plan_sql, plan_args = build_search(SearchQuery(q="grp42", limit=20))
    plan = await pool.fetch("EXPLAIN " + plan_sql, *plan_args)
    uses_gin = "yes" if any("page_search_idx" in r[0] for r in plan) else "no"
    for row in rows:
        if "grp42 (1 %" in row["metric"]:
            row["note"] += f"; the plan uses the GIN index: {uses_gin}"
    return rows


async def _rps(call: Any, hashes: list[str], *, concurrency: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds
    rng = random.Random(1)

    async def worker() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await call(rng.choice(hashes))
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done / (time.perf_counter() - started)


async def _page_rows(
    api: ApiProcess, pool: asyncpg.Pool, key: str, hashes: list[str], *, quick: bool
) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"}
    seconds = 2.0 if quick else 8.0
    sql = page_sql()
    connector = aiohttp.TCPConnector(limit=16)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def http_get(h: str) -> None:
            async with session.get(f"{api.url}/pages/{h}", headers=headers) as response:
                await response.read()
                assert response.status == 200

        async def sql_get(h: str) -> None:
            assert await pool.fetchrow(sql, h) is not None

        ours, base = [], []
        for _ in range(1 if quick else 3):  # alternate, median
            ours.append(await _rps(http_get, hashes, concurrency=16, seconds=seconds))
            base.append(await _rps(sql_get, hashes, concurrency=16, seconds=seconds))
    return [
        {
            "section": SECTION,
            "metric": "GET /pages/{url_hash} requests/s, 16 in flight",
            "value": statistics.median(ours),
            "baseline": "asyncpg fetchrow of the same statement, 16 in flight",
            "baseline_value": statistics.median(base),
            "note": "key check + page row + JSON per request; the aiohttp client shares the 2 cores",
        }
    ]


async def bench(*, quick: bool) -> list[dict[str, Any]]:
    n_pages = 2_000 if quick else 100_000
    paragraphs = _paragraphs()
    shares = _doc_words(paragraphs)
    rows: list[dict[str, Any]] = []
    with services() as svc, tempfile.TemporaryDirectory(prefix="streamcrawl-bench-api-") as tmp:
        rows += await _tsvector_cost(svc.pg, paragraphs, quick=quick)
        pages = _pages(n_pages, paragraphs)
        load_s = await _load(svc.pg, pages)
        settings = Settings(postgres=svc.pg, s3=svc.s3, api=ApiSettings(pool_size=8))
        key = await make_key(svc.pg, "read", rate_per_s=1_000_000)
        api = ApiProcess(settings, log_path=Path(tmp) / "api.log")  # access log on, as deployed
        await asyncio.to_thread(api.start)
        pool = await asyncpg.create_pool(svc.pg.dsn(), min_size=8, max_size=8)
        try:
            search = await _search_rows(api, pool, key, shares, n_pages, quick=quick)
            search[0]["note"] += f"; {n_pages:,} rows loaded in {load_s:.0f} s"
            rows += search
            rows += await _page_rows(api, pool, key, [p.url_hash for p in pages], quick=quick)
        finally:
            await pool.close()
            await asyncio.to_thread(api.stop)
    return rows
