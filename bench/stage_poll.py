"""Progress polls: the cost of one poll of a batch's progress at 1k and at 100k URLs.

``crawl --wait`` (workers/ledger/follow.py), ``status``, the Dagster completion sensor and
asset checks, and the API's ``/batches`` all read a batch's progress with
``workers.ledger.read_progress`` / ``list_progress``. Issue 14 asks that a poll costs the same
at 100k stored pages as at 1k; this stage measures it.

The bench starts its own PostgreSQL (durable, bench/stage_storage.py's launcher) with a fresh
database, and seeds two batches through the ledger's own functions, as the publishers and the
discovery daemon write them: ``create_batch``, ``admit`` of the listed URLs (chunks of 5,000),
``mark_published``, then ``record_outcomes`` for 98 % of them (stored, 3 % skipped by reason,
2 % dead-lettered by error class; 2 % stay in flight). Then it alternates polls of the small
and the large batch (quick: 1k and 10k URLs, 200 polls each; full: 1k and 100k, 2,000 each)
and reports per size the median and p99 wall time of one ``read_progress`` and the PostgreSQL
buffers its statements touch (``EXPLAIN (ANALYZE, BUFFERS)`` of each, summed: a count that
does not depend on the machine's load). Target: the large batch's figures within 10 % (time)
and equal (buffers) of the small one's.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg

from tests.helpers.ports import free_port
from workers.ledger import (
    BatchSpec,
    Candidate,
    Outcome,
    admit,
    create_batch,
    mark_published,
    read_progress,
    record_outcomes,
)
from workers.ledger.progress import list_progress
from workers.messages import Scope
from workers.settings import PostgresSettings, StackSettings
from workers.stack.paths import StackPaths
from workers.stack.postgres import EmbeddedPostgres
from workers.storage.migrate import apply_migrations
from workers.urls import url_hash

__all__ = ["bench"]

SECTION = "progress polls (crawl --wait, status, Dagster sensors and checks, API)"
_SKIP_REASONS = ("robots", "noindex", "non_html")
_DEAD_REASONS = ("FetchTimeout", "HttpError")
_BUFFERS = re.compile(r"Buffers: shared hit=(\d+)(?: read=(\d+))?")


@contextlib.contextmanager
def postgres() -> Iterator[PostgresSettings]:
    """PostgreSQL alone (durable), on a free port in a scratch directory; stopped afterwards."""
    base = Path(tempfile.mkdtemp(prefix="streamcrawl-bench-poll-"))
    base.chmod(0o711)
    pg = PostgresSettings(port=free_port(), password=secrets.token_hex(12), database="streamcrawl_bench")
    server = EmbeddedPostgres(
        stack=StackSettings(data_dir=base), postgres=pg, paths=StackPaths.at(base / "pg"), durable=True
    )
    try:
        server.ensure_running()
        yield pg
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)


async def seed(conn: asyncpg.Connection, batch: str, urls: int) -> float:
    """A published batch of ``urls`` listed URLs, 98 % of them with an outcome; seconds taken."""
    started = time.perf_counter()
    scope = Scope()
    await create_batch(conn, BatchSpec(batch=batch, origin="cli", scope=scope))
    candidates = []
    for i in range(urls):
        url = f"https://h{i % 100}.poll.test/{batch}/{i}"
        candidates.append(Candidate(url=url, url_hash=url_hash(url), host=f"h{i % 100}.poll.test", rank=i))
    for i in range(0, urls, 5_000):
        async with conn.transaction():
            await admit(conn, batch=batch, scope=scope, candidates=candidates[i : i + 5_000])
    await mark_published(conn, batch)
    outcomes = []
    for i, c in enumerate(candidates[: urls * 98 // 100]):
        if i % 100 < 3:
            outcomes.append(Outcome(batch, c.url_hash, "skipped", reason=_SKIP_REASONS[i % 3], example=c.url))
        elif i % 100 < 5:
            outcomes.append(
                Outcome(batch, c.url_hash, "dead", reason=_DEAD_REASONS[i % 2], fetched=False, example=c.url)
            )
        else:
            outcomes.append(Outcome(batch, c.url_hash, "stored", route="fast"))
    for i in range(0, len(outcomes), 2_000):
        async with conn.transaction():
            await record_outcomes(conn, outcomes[i : i + 2_000])
    await conn.execute("ANALYZE")
    return time.perf_counter() - started


async def _buffers(conn: asyncpg.Connection, batch: str) -> int:
    """Shared buffers touched by the statements of one poll (list_progress's two reads)."""
    total = 0
    for statement in (
        "SELECT * FROM crawl_batches WHERE batch = ANY($1::text[])",
        "SELECT batch, outcome, reason, n, example FROM crawl_batch_reasons WHERE batch = ANY($1::text[])",
    ):
        plan = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {statement}", [batch])
        top = next((m for r in plan if (m := _BUFFERS.search(r[0]))), None)
        if top is not None:
            total += int(top.group(1)) + int(top.group(2) or 0)
    return total


async def _measure(pg: PostgresSettings, sizes: tuple[int, int], polls: int) -> dict[str, Any]:
    conn = await asyncpg.connect(pg.dsn())
    try:
        await apply_migrations(conn)
        run = secrets.token_hex(3)
        batches = {n: f"poll-{run}-{n}" for n in sizes}
        seeded = {n: await seed(conn, b, n) for n, b in batches.items()}
        for b in batches.values():  # sanity: the model adds up
            p = await read_progress(conn, b)
            assert p is not None and p.requested == p.accounted + p.in_flight, p
        times: dict[int, list[float]] = {n: [] for n in sizes}
        for _ in range(20):  # warm-up: statement cache, buffers
            for b in batches.values():
                await read_progress(conn, b)
        for _ in range(polls):  # alternate, so load drift hits both sizes alike
            for n, b in batches.items():
                t = time.perf_counter()
                await read_progress(conn, b)
                times[n].append(time.perf_counter() - t)
        both = []
        for _ in range(polls):
            t = time.perf_counter()
            await list_progress(conn, list(batches.values()))
            both.append(time.perf_counter() - t)
        buffers = {n: await _buffers(conn, b) for n, b in batches.items()}
        rows = {
            n: int(await conn.fetchval("SELECT count(*) FROM crawl_urls WHERE batch = $1", b))
            for n, b in batches.items()
        }
        return {"times": times, "buffers": buffers, "seeded": seeded, "rows": rows, "both": both}
    finally:
        await conn.close()


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench(*, quick: bool) -> list[dict[str, Any]]:
    small, large = (1_000, 10_000) if quick else (1_000, 100_000)
    large = int(os.environ.get("STREAMCRAWL_BENCH_POLL_URLS", large))
    polls = 200 if quick else 2_000
    with postgres() as pg:
        m = asyncio.run(_measure(pg, (small, large), polls))
    p50 = {n: statistics.median(v) for n, v in m["times"].items()}
    p99 = {n: _pct(v, 0.99) for n, v in m["times"].items()}
    seeded = ", ".join(f"{m['rows'][n]:,} URLs in {m['seeded'][n]:.0f} s" for n in (small, large))
    note = (
        f"two batches in one fresh database, seeded through the ledger's functions ({seeded}); "
        f"98 % with an outcome; {polls} polls of each, alternating; one asyncpg connection"
    )
    return [
        {
            "section": SECTION,
            "metric": f"read_progress, ms per poll (p50), batch of {large:,} URLs",
            "value": p50[large] * 1e3,
            "baseline": f"batch of {small:,} URLs",
            "baseline_value": p50[small] * 1e3,
            "target": "within 10 % of the small batch",
            "met": p50[large] <= 1.1 * p50[small],
            "note": note,
        },
        {
            "section": SECTION,
            "metric": f"read_progress, ms per poll (p99), batch of {large:,} URLs",
            "value": p99[large] * 1e3,
            "baseline": f"batch of {small:,} URLs",
            "baseline_value": p99[small] * 1e3,
            "target": "",
            "note": "tail of the same polls (machine noise)",
        },
        {
            "section": SECTION,
            "metric": f"PostgreSQL buffers touched per poll, batch of {large:,} URLs",
            "value": m["buffers"][large],
            "baseline": f"batch of {small:,} URLs",
            "baseline_value": m["buffers"][small],
            "target": "the same",
            "met": m["buffers"][large] <= m["buffers"][small],
            "note": (
                "EXPLAIN (ANALYZE, BUFFERS) of the poll's two statements (crawl_batches counters, "
                "crawl_batch_reasons); independent of machine load"
            ),
        },
        {
            "section": SECTION,
            "metric": "list_progress of both batches, ms per poll (p50)",
            "value": statistics.median(m["both"]) * 1e3,
            "baseline": "",
            "baseline_value": None,
            "target": "",
            "note": "as the API's /batches, the completion sensor and the checks read a page of batches",
        },
    ]


if __name__ == "__main__":
    for row in bench(quick="--quick" in sys.argv):
        print(row, file=sys.stderr)
