"""Publishing frontier partitions: rank ranges of a Tranco snapshot -> ``crawl.request``.

URLs are built from a template (``https://{domain}/`` by default; the demo web and tests
use ``http://{domain}:PORT/``), normalised and hashed by ``workers.frontier.build_request``
and published by ``workers.frontier.publish_requests``, exactly like the CLI. URLs that are
already stored are skipped unless ``recrawl``. Each partition is one crawl batch
(``batch`` = the partition key) recorded in ``crawl_batches`` before publishing and marked
``published`` once the broker acknowledged every record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass

import asyncpg

from crawl_assets.batches import begin_batch, finish_batch
from crawl_assets.partitions import rank_range
from workers.errors import ConfigError
from workers.frontier import build_request, publish_requests
from workers.messages import CrawlRequest
from workers.settings import KafkaSettings

__all__ = ["BatchResult", "StoredHashes", "latest_list_id", "publish_partitions", "render_url"]

StoredHashes = Callable[[Iterable[str]], Awaitable[set[str]]]
"""The subset of URL hashes that already has a stored page (``PageStore.stored_hashes``)."""


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch: str
    first_rank: int
    last_rank: int
    in_list: int
    """Domains of the snapshot in this rank range."""
    published: int
    skipped_stored: int


def render_url(template: str, domain: str) -> str:
    try:
        return template.format(domain=domain)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"url_template {template!r} must contain only the {{domain}} field") from exc


async def latest_list_id(conn: asyncpg.Connection) -> str:
    list_id = await conn.fetchval("SELECT list_id FROM tranco_snapshots ORDER BY loaded_at DESC LIMIT 1")
    if list_id is None:
        raise ConfigError("no Tranco list is loaded yet: materialise a tranco_list partition first")
    return str(list_id)


async def _requests_for(
    conn: asyncpg.Connection, *, list_id: str, batch: str, template: str, recrawl: bool
) -> list[CrawlRequest]:
    lo, hi = rank_range(batch)
    rows = await conn.fetch(
        "SELECT rank, domain FROM tranco_lists WHERE list_id = $1 AND rank BETWEEN $2 AND $3 ORDER BY rank",
        list_id,
        lo,
        hi,
    )
    return [
        build_request(render_url(template, r["domain"]), batch=batch, rank=r["rank"], recrawl=recrawl)
        for r in rows
    ]


async def publish_partitions(
    conn: asyncpg.Connection,
    kafka: KafkaSettings,
    *,
    keys: Sequence[str],
    list_id: str,
    url_template: str,
    recrawl: bool,
    stored_hashes: StoredHashes,
    run_id: str | None = None,
) -> list[BatchResult]:
    """Publish each partition as its own batch, in key order; returns one result per key."""
    if not await conn.fetchval("SELECT 1 FROM tranco_snapshots WHERE list_id = $1", list_id):
        raise ConfigError(f"Tranco list {list_id!r} is not loaded: materialise that tranco_list partition")
    results: list[BatchResult] = []
    for key in sorted(keys):
        lo, hi = rank_range(key)
        requests = await _requests_for(
            conn, list_id=list_id, batch=key, template=url_template, recrawl=recrawl
        )
        unique = list({r.url_hash: r for r in requests}.values())
        stored = set() if recrawl else await stored_hashes([r.url_hash for r in unique])
        todo = [r for r in unique if r.url_hash not in stored]
        await begin_batch(
            conn,
            batch=key,
            list_id=list_id,
            ranks=(lo, hi),
            url_template=url_template,
            recrawl=recrawl,
            urls=[(r.url_hash, r.url, r.rank) for r in todo],
            skipped=len(unique) - len(todo),
            run_id=run_id,
        )
        if todo:
            await publish_requests(kafka, todo)
        await finish_batch(conn, key)
        results.append(BatchResult(key, lo, hi, len(requests), len(todo), len(unique) - len(todo)))
    return results
