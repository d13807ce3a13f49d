"""Storage writer: records/s of ``PageStore.save_batch`` on real PostgreSQL + SeaweedFS.

The bench starts its own PostgreSQL (durable: fsync on) and SeaweedFS with the embedded
stack's launchers on free 127.0.0.1 ports in a scratch directory, and stops them at the end.
Pages are the 130 real articles of ``../shared/data/readability``: the full source HTML
zstd-compressed (mean ~31 KB, ~198 KB raw), Markdown from html2text of the expected main
content cut to ~5 KB, the same as plain text, up to 150 real outlinks, a realistic set of
response headers. Every run writes new URLs (a fresh run id).

Measured in alternating runs (median of 3; quick: 1 small run):

- ours (the default and only layout): batches of 200, 3 in flight (as the storage writer runs
  them); per page request/response/metadata/conversion WARC records gzipped per record with
  ISA-L, packed into <= 4 MB append-only objects PUT in parallel, one unnest UPSERT per
  sub-batch, then the duplicate check; the search vectors are built by the writer's background
  indexer (migration 0022), and those still queued when the writes are done are built and
  timed apart (the "search vectors built off the write path" row);
- ours, redelivery: the same batches again (rows found by fetch time: 0 PUTs, no rows written);
- baseline: what a user would write with warcio alone: per record its WARC records through
  warcio's own gzip writer, one PUT and one UPSERT, sequentially;
- PostgreSQL alone: the batched UPSERT vs ``executemany`` of the same single-row statement;
- near duplicates: the share of planted near copies of the readability articles (1% of words
  edited; a navigation header and footer added) the SimHash threshold flags, and the pairs of
  distinct articles it flags.

CPU seconds per record are the bench process's (``time.process_time``: the writer, its WARC
encoding threads and its S3 threads) and, separately, the servers' (PostgreSQL + SeaweedFS,
from /proc). On 2 cores the sum bounds the rate: the note of each row gives that ceiling.
"""

from __future__ import annotations

import asyncio
import html
import io
import itertools
import json
import os
import random
import re
import resource
import secrets
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import html2text
from minio import Minio
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from tests.helpers.ports import free_port, free_port_with_grpc
from workers.extract.simhash import simhash
from workers.extract.text import normalise, tokens
from workers.messages import ProcessedPage, compress_html, decompress_html
from workers.settings import PostgresSettings, S3Settings, StackSettings, StorageSettings
from workers.stack.component import Component
from workers.stack.paths import StackPaths
from workers.stack.postgres import EmbeddedPostgres
from workers.stack.procfs import descendants
from workers.stack.seaweed import SeaweedFS
from workers.storage import PageStore
from workers.storage.migrate import apply_migrations
from workers.storage.objects import warc_object_key
from workers.storage.pages import UPSERT_SQL, columns_of
from workers.storage.plan import ObjectRefs
from workers.storage.search_index import queued_count
from workers.urls import url_hash

__all__ = ["bench"]

DATA = Path(os.environ.get("STREAMCRAWL_SHARED_DATA", "/work/shared/data")) / "readability/test/test-pages"
BATCH = 200
IN_FLIGHT = 3  # the storage writer keeps 3 batches in flight (max_in_flight = 3 x batch_size)
MARKDOWN_BYTES = 5_000


# -- services -----------------------------------------------------------------------------


def _cpu_seconds(pids: list[int]) -> float:
    """user+system CPU of the given processes, their reaped children included."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
    return total / tick


def _with_children(root: int | None) -> list[int]:
    if root is None:
        return []
    return [root, *(p.pid for p in descendants(root) if p.pid != root)]


@dataclass
class Services:
    pg: PostgresSettings
    s3: S3Settings
    server_cpu: Callable[[], float]


@contextmanager
def services() -> Iterator[Services]:
    """PostgreSQL (durable, as in production) + SeaweedFS through the embedded stack's own
    launchers, on free ports in a scratch directory; stopped by PID afterwards."""
    base = Path(tempfile.mkdtemp(prefix="streamcrawl-bench-storage-"))
    base.chmod(0o711)
    started: list[Component] = []
    stack = StackSettings(
        data_dir=base,
        seaweed_master_port=free_port_with_grpc(),
        seaweed_volume_port=free_port_with_grpc(),
        seaweed_filer_port=free_port_with_grpc(),
    )
    s3 = S3Settings(
        endpoint=f"127.0.0.1:{free_port_with_grpc()}",
        access_key="bench-" + secrets.token_hex(4),
        secret_key=secrets.token_hex(16),
        bucket="streamcrawl-bench",
    )
    pg = PostgresSettings(port=free_port(), password=secrets.token_hex(12), database="streamcrawl_bench")
    try:
        seaweed = SeaweedFS(stack=stack, s3=s3, paths=StackPaths.at(base / "s3"))
        seaweed.ensure_running()
        started.append(seaweed)
        postgres = EmbeddedPostgres(stack=stack, postgres=pg, paths=StackPaths.at(base / "pg"), durable=True)
        postgres.ensure_running()
        started.append(postgres)

        def server_cpu() -> float:
            return _cpu_seconds(_with_children(postgres.pid()) + _with_children(seaweed.pid()))

        yield Services(pg=pg, s3=s3, server_cpu=server_cpu)
    finally:
        for component in reversed(started):
            component.stop()
        shutil.rmtree(base, ignore_errors=True)


# -- pages --------------------------------------------------------------------------------

_HREF = re.compile(rb'href="(https?://[^"\s<>]{1,300})"')


Corpus = list[tuple[bytes, str, list[str], str]]
HEADERS = [
    ["Date", "Mon, 01 Dec 2025 10:00:00 GMT"],
    ["Content-Type", "text/html; charset=utf-8"],
    ["Content-Encoding", "gzip"],
    ["Transfer-Encoding", "chunked"],
    ["Cache-Control", "max-age=300"],
    ["ETag", '"5f2a-6b1c"'],
    ["Last-Modified", "Sun, 30 Nov 2025 08:00:00 GMT"],
    ["Vary", "Accept-Encoding"],
    ["Server", "nginx"],
]


def load_corpus(limit: int | None = None) -> Corpus:
    """(html zstd, ~5 KB Markdown, outlinks, title) per readability test page."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    corpus = []
    for d in sorted(p for p in DATA.iterdir() if (p / "source.html").exists())[:limit]:
        source = (d / "source.html").read_bytes()
        expected = (d / "expected.html").read_text(errors="replace")
        markdown = converter.handle(expected)
        while len(markdown) < MARKDOWN_BYTES // 2:  # short articles: repeat to a realistic size
            markdown += "\n\n" + markdown
        links = list(
            dict.fromkeys(html.unescape(u.decode("utf-8", "replace")) for u in _HREF.findall(source))
        )
        title = json.loads((d / "expected-metadata.json").read_text()).get("title") or d.name
        corpus.append((compress_html(source), markdown[:MARKDOWN_BYTES], links[:150], title))
    return corpus


def make_pages(corpus: Corpus, n: int) -> list[ProcessedPage]:
    run = uuid.uuid4().hex[:8]
    pages = []
    for i in range(n):
        html_zstd, markdown, links, title = corpus[i % len(corpus)]
        host = f"h{i % 50}.bench.test"
        url = f"https://{host}/{run}/article/{i}"
        now = time.time()
        pages.append(
            ProcessedPage(
                url=url,
                url_hash=url_hash(url),
                host=host,
                final_url=url,
                status=200,
                route="fast",
                score=100,
                fetched_at=now,
                processed_at=now,
                content_hash=uuid.uuid4().hex,
                html_zstd=html_zstd,
                markdown=markdown,
                text=markdown,
                title=title,
                description=title,
                lang="en",
                outlinks=links,
                word_count=len(markdown.split()),
                text_hash=uuid.uuid4().hex,
                simhash=int.from_bytes(os.urandom(8)),
                rules=["article"],
                batch=run,
                rank=i,
                response_headers=HEADERS,
                request_headers=[
                    ["Host", host],
                    ["User-Agent", "StreamCrawl/0.1"],
                    ["Accept-Encoding", "gzip"],
                ],
                peer_ip="127.0.0.1",
                http_version="HTTP/1.1",
                content_type="text/html; charset=utf-8",
                language="en",
                language_score=0.99,
            )
        )
    return pages


# -- runs ---------------------------------------------------------------------------------


@dataclass
class Run:
    records: int
    wall: float
    cpu: float
    server_cpu: float
    puts: int
    queued: int = 0
    """Pages still waiting for their search vector when the writes were done."""
    indexed: int = 0
    """Search vectors built (during the writes in the background, and after them)."""
    index_wall: float = 0.0
    """Wall time of the indexing statements."""
    index_server_cpu: float = 0.0
    """Server CPU of building the vectors still queued after the writes."""

    @property
    def rate(self) -> float:
        return self.records / self.wall


async def _drive(store: PageStore, pages: list[ProcessedPage]) -> None:
    """Batches of 200, up to IN_FLIGHT at once, like the worker lifecycle hands them over."""
    window = asyncio.Semaphore(IN_FLIGHT)

    async def one(batch: list[ProcessedPage]) -> None:
        async with window:
            await store.save_batch(batch)

    await asyncio.gather(*(one(pages[i : i + BATCH]) for i in range(0, len(pages), BATCH)))


async def _ours(svc: Services, pages: list[ProcessedPage], *, again: bool = False) -> list[Run]:
    """One pass of new pages; with ``again``, a second pass of the same records (a redelivery)."""
    runs = []
    async with PageStore(svc.pg, svc.s3, StorageSettings()) as store:
        for _ in range(2 if again else 1):
            store.puts = 0
            indexed, busy = store.search_indexer.indexed, store.search_indexer.busy_s
            cpu, server, t = time.process_time(), svc.server_cpu(), time.perf_counter()
            await _drive(store, pages)
            wall = time.perf_counter() - t
            run = Run(len(pages), wall, time.process_time() - cpu, svc.server_cpu() - server, store.puts)
            # The search vectors the background indexer has not built yet: built now, timed apart.
            run.queued = await queued_count(store.pool)
            server = svc.server_cpu()
            await store.index_search()
            run.index_server_cpu = svc.server_cpu() - server
            run.indexed = store.search_indexer.indexed - indexed
            run.index_wall = store.search_indexer.busy_s - busy
            runs.append(run)
    return runs


def _warcio_gzip(page: ProcessedPage) -> bytes:
    """The page's response record the plain warcio way (its own gzip writer, zlib level 9)."""
    out = io.BytesIO()
    writer = WARCWriter(out, gzip=True, warc_version="1.1")
    body = decompress_html(page.html_zstd)
    http = StatusAndHeaders("200 OK", [tuple(h) for h in page.response_headers], protocol="HTTP/1.1")
    writer.write_record(
        writer.create_warc_record(page.final_url, "response", payload=io.BytesIO(body), http_headers=http)
    )
    writer.write_record(
        writer.create_warc_record(
            page.final_url,
            "conversion",
            payload=io.BytesIO(page.markdown.encode()),
            warc_content_type="text/markdown",
        )
    )
    return out.getvalue()


async def _naive(svc: Services, pages: list[ProcessedPage]) -> Run:
    client = Minio(
        svc.s3.endpoint,
        access_key=svc.s3.access_key,
        secret_key=svc.s3.secret_key,
        secure=False,
        region=svc.s3.region,
    )
    conn = await asyncpg.connect(svc.pg.dsn())
    try:
        await apply_migrations(conn)
        cpu, server, t = time.process_time(), svc.server_cpu(), time.perf_counter()
        for page in pages:
            data = _warcio_gzip(page)
            key = warc_object_key(time.time())
            client.put_object(svc.s3.bucket, key, io.BytesIO(data), len(data))
            await conn.execute(UPSERT_SQL, *columns_of([page], [ObjectRefs()]))
        wall = time.perf_counter() - t
        return Run(len(pages), wall, time.process_time() - cpu, svc.server_cpu() - server, len(pages))
    finally:
        await conn.close()


async def _pg_only(svc: Services, pages: list[ProcessedPage]) -> tuple[float, float]:
    """rows/s of the batched UPSERT and of executemany with the single-row statement."""
    refs = [ObjectRefs()] * len(pages)
    conn = await asyncpg.connect(svc.pg.dsn())
    try:
        await apply_migrations(conn)
        t = time.perf_counter()
        for i in range(0, len(pages), BATCH):
            await conn.execute(UPSERT_SQL, *columns_of(pages[i : i + BATCH], refs[i : i + BATCH]))
        batched = len(pages) / (time.perf_counter() - t)
        fresh = make_pages(_CORPUS, len(pages))
        t = time.perf_counter()
        for i in range(0, len(fresh), BATCH):
            chunk = fresh[i : i + BATCH]
            await conn.executemany(
                UPSERT_SQL, [[[v] for v in columns_of([p], [ObjectRefs()])] for p in chunk]
            )
        many = len(fresh) / (time.perf_counter() - t)
        return batched, many
    finally:
        await conn.close()


_CORPUS: Corpus = []


def near_duplicate_recall(max_distance: int) -> dict[str, float]:
    """Share of planted near copies within ``max_distance`` SimHash bits, and flagged pairs of
    distinct articles (the readability set's expected main texts of 150+ words)."""
    converter = html2text.HTML2Text()
    converter.body_width = 0
    converter.ignore_links = True
    texts = []
    for d in sorted(p for p in DATA.iterdir() if (p / "expected.html").exists()):
        text = converter.handle((d / "expected.html").read_text(errors="replace"))
        if len(text.split()) > 150:
            texts.append(text)
    rng = random.Random(1)

    def edited(text: str) -> str:
        words = text.split()
        for _ in range(len(words) // 100):
            words[rng.randrange(len(words))] = f"edit{rng.randrange(10**6)}"
        return " ".join(words)

    def framed(text: str) -> str:
        return (
            "Home News Sport Weather Contact Subscribe to our newsletter Privacy Cookies "
            + text
            + " Copyright 2025 All rights reserved Terms of use Follow us"
        )

    def sh(text: str) -> int:
        return simhash(tokens(normalise(text)))

    hashes = [sh(t) for t in texts]
    out = {}
    for name, change in (("1% of words edited", edited), ("header and footer added", framed)):
        out[name] = statistics.mean(
            (h ^ sh(change(t))).bit_count() <= max_distance for t, h in zip(texts, hashes, strict=True)
        )
    out["distinct pairs flagged"] = sum(
        (a ^ b).bit_count() <= max_distance for a, b in itertools.combinations(hashes, 2)
    )
    out["articles"] = len(texts)
    return out


def bench(*, quick: bool) -> list[dict[str, Any]]:
    _CORPUS[:] = load_corpus(30 if quick else None)
    n_ours, n_naive, repeats = (60, 5, 1) if quick else (2000, 100, 3)
    n_ours = int(os.environ.get("STREAMCRAWL_BENCH_STORAGE_RECORDS", n_ours))
    runs: dict[str, list[Run]] = {"naive": [], "warc": [], "redelivery": []}
    pg_rates: list[tuple[float, float]] = []
    with services() as svc:
        for _ in range(repeats):  # alternate, so drifting machine load hits all alike
            runs["naive"].append(asyncio.run(_naive(svc, make_pages(_CORPUS, n_naive))))
            first, again = asyncio.run(_ours(svc, make_pages(_CORPUS, n_ours), again=True))
            runs["warc"].append(first)
            runs["redelivery"].append(again)
            pg_rates.append(asyncio.run(_pg_only(svc, make_pages(_CORPUS, n_ours))))
    med = {k: _medians(v) for k, v in runs.items()}
    for k, v in med.items():
        print(f"storage {k}: {v}", file=sys.stderr)
    size = statistics.mean(
        len(p.html_zstd) + len(p.markdown.encode()) for p in make_pages(_CORPUS, len(_CORPUS))
    )
    base = med["naive"]
    rows: list[dict[str, Any]] = []
    for key, label, note in (
        ("warc", "records/s, WARC layout (default: records packed in <= 4 MB objects)", "~1 PUT per 4 MB"),
        ("redelivery", "records/s, redelivery of stored pages", "rows found by fetch time: 0 PUTs"),
    ):
        m = med[key]
        ceiling = (os.cpu_count() or 1) / max(m["cpu"] + m["server_cpu"], 1e-9)
        rows.append(
            {
                "section": "storage writer",
                "metric": label,
                "value": m["rate"],
                "baseline": "warcio alone: per record its gzip writer, 1 PUT, 1 UPSERT",
                "baseline_value": base["rate"],
                "target": ">= 2,000 records/s",
                "met": m["rate"] >= 2000,
                "note": (
                    f"{note}; {m['puts']:.3f} PUTs/record; CPU ms/record: writer {m['cpu'] * 1e3:.2f}, "
                    f"PostgreSQL+SeaweedFS {m['server_cpu'] * 1e3:.2f} (baseline: {base['cpu'] * 1e3:.2f} / "
                    f"{base['server_cpu'] * 1e3:.2f}); CPU-bound ceiling on {os.cpu_count()} idle cores "
                    f"~{ceiling:,.0f} records/s; real pages ~{size / 1000:.0f} KB of content each (zstd); "
                    f"{IN_FLIGHT} batches of {BATCH} in flight; median of {repeats}"
                ),
            }
        )
        rows.append(
            {
                "section": "storage writer",
                "metric": f"CPU s/record, {key} (writer process)",
                "value": m["cpu"],
                "baseline": "warcio alone: per record its gzip writer, 1 PUT, 1 UPSERT",
                "baseline_value": base["cpu"],
                "target": "",
                "note": f"servers (PostgreSQL + SeaweedFS) add {m['server_cpu']:.5f} s/record",
            }
        )
    m = med["warc"]
    rows.append(
        {
            "section": "storage writer",
            "metric": "search vectors built off the write path, pages/s (page_search_index, 500 per statement)",
            "value": m["index_rate"],
            "baseline": "",
            "baseline_value": None,
            "target": "",
            "note": (
                f"{m['queued']:.0%} of the pages were still queued when the writes were done (the background "
                f"indexer gives way to writes, at most {StorageSettings().search_index_max_delay_s:g} s); "
                f"PostgreSQL CPU ms/page of those built after the writes: {m['index_server_cpu'] * 1e3:.2f} "
                "(before migration 0022 this work was inside every UPSERT, ~0.9 ms per new page); "
                "pages/s over the time spent in the indexing statements"
            ),
        }
    )
    rows.append(
        {
            "section": "storage writer",
            "metric": "pages UPSERT rows/s (PostgreSQL only, batches of 200)",
            "value": statistics.median(r[0] for r in pg_rates),
            "baseline": "executemany of the single-row statement",
            "baseline_value": statistics.median(r[1] for r in pg_rates),
            "target": "",
            "note": "real rows incl. ~100 outlinks each; one unnest INSERT ... ON CONFLICT per batch",
        }
    )
    distance = StorageSettings().near_duplicate_distance
    recall = near_duplicate_recall(distance)
    rows.append(
        {
            "section": "storage writer",
            "metric": f"near copies flagged (SimHash distance <= {distance})",
            "value": recall["1% of words edited"],
            "baseline": "header and footer added",
            "baseline_value": recall["header and footer added"],
            "target": "",
            "note": (
                f"share of planted copies of {recall['articles']:.0f} real articles within the threshold; "
                f"{recall['distinct pairs flagged']:.0f} pairs of distinct test articles flagged "
                "(the readability set holds a few near-identical pages); exact copies go by text hash"
            ),
        }
    )
    rows.append(
        {
            "section": "storage writer",
            "metric": "peak RSS (MB)",
            "value": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "baseline": "",
            "baseline_value": None,
            "target": "",
            "note": "bench process (writer + its S3 threads); servers excluded",
        }
    )
    return rows


def _medians(runs: list[Run]) -> dict[str, float]:
    return {
        "rate": statistics.median(r.rate for r in runs),
        "cpu": statistics.median(r.cpu / r.records for r in runs),
        "server_cpu": statistics.median(r.server_cpu / r.records for r in runs),
        "puts": statistics.median(r.puts / r.records for r in runs),
        "queued": statistics.median(r.queued / r.records for r in runs),
        "index_rate": statistics.median(r.indexed / r.index_wall if r.index_wall else 0.0 for r in runs),
        "index_server_cpu": statistics.median(
            r.index_server_cpu / r.queued if r.queued else 0.0 for r in runs
        ),
    }


if __name__ == "__main__":
    for row in bench(quick="--quick" in sys.argv):
        print(row, file=sys.stderr)
