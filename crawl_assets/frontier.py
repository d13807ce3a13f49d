"""Publishing frontier partitions: rank ranges of a Tranco snapshot -> crawl batches.

URLs are built from a template (``https://{domain}/`` by default; the demo web and tests
use ``http://{domain}:PORT/``), canonicalised with ``workers.urls.normalize_url`` and published
through ``workers.ledger.publish_batch`` — the same path as the CLI: the batch and its scope go
into the ledger, URLs already stored are skipped (counted ``already_stored``) unless ``recrawl``.

Each materialisation of a partition is **its own batch** (``<partition>@<run id>``, with
``partition_key`` recorded): a re-crawl of a partition never rewrites the previous batch's
membership or progress, and the completion sensor follows the latest batch of each partition.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from crawl_assets.partitions import rank_range
from workers.errors import ConfigError
from workers.frontier import ListEntry
from workers.ledger import BatchSpec, publish_batch
from workers.messages import Scope
from workers.settings import KafkaSettings
from workers.urls import InvalidURL, normalize_url

__all__ = ["BatchResult", "batch_id", "latest_list_id", "publish_partitions", "render_url"]


@dataclass(frozen=True, slots=True)
class BatchResult:
    batch: str
    partition: str
    first_rank: int
    last_rank: int
    in_list: int
    """Domains of the snapshot in this rank range."""
    published: int
    skipped_stored: int
    invalid: int = 0
    refused: dict[str, int] = field(default_factory=dict)


def render_url(template: str, domain: str) -> str:
    try:
        return template.format(domain=domain)
    except (KeyError, IndexError, ValueError) as exc:
        raise ConfigError(f"url_template {template!r} must contain only the {{domain}} field") from exc


def batch_id(partition: str, run_id: str | None) -> str:
    """``0000001-0001000@1a2b3c4d``: one batch per materialisation of a partition."""
    return f"{partition}@{(run_id or uuid.uuid4().hex)[:8]}"


async def latest_list_id(conn: asyncpg.Connection) -> str:
    list_id = await conn.fetchval("SELECT list_id FROM tranco_snapshots ORDER BY loaded_at DESC LIMIT 1")
    if list_id is None:
        raise ConfigError("no Tranco list is loaded yet: materialise a tranco_list partition first")
    return str(list_id)


async def _entries(
    conn: asyncpg.Connection, *, list_id: str, key: str, template: str
) -> tuple[list[ListEntry], int, int]:
    """(unique entries, domains in range, invalid) of one partition."""
    lo, hi = rank_range(key)
    rows = await conn.fetch(
        "SELECT rank, domain FROM tranco_lists WHERE list_id = $1 AND rank BETWEEN $2 AND $3 ORDER BY rank",
        list_id,
        lo,
        hi,
    )
    seen: dict[str, ListEntry] = {}
    invalid = 0
    for r in rows:
        try:
            url = normalize_url(render_url(template, r["domain"]))
        except InvalidURL:
            invalid += 1
            continue
        seen.setdefault(url, ListEntry(url=url, rank=r["rank"]))
    return list(seen.values()), len(rows), invalid


async def publish_partitions(
    conn: asyncpg.Connection,
    kafka: KafkaSettings,
    *,
    keys: Sequence[str],
    list_id: str,
    url_template: str,
    scope: Scope,
    recrawl: bool,
    sitemaps: bool = False,
    run_id: str | None = None,
) -> list[BatchResult]:
    """Publish each partition as its own batch, in key order; returns one result per key."""
    if not await conn.fetchval("SELECT 1 FROM tranco_snapshots WHERE list_id = $1", list_id):
        raise ConfigError(f"Tranco list {list_id!r} is not loaded: materialise that tranco_list partition")
    results: list[BatchResult] = []
    for key in sorted(keys):
        lo, hi = rank_range(key)
        entries, in_list, invalid = await _entries(conn, list_id=list_id, key=key, template=url_template)
        batch = batch_id(key, run_id)
        spec = BatchSpec(
            batch=batch,
            origin="dagster",
            scope=scope,
            recrawl=recrawl,
            sitemaps=sitemaps,
            partition_key=key,
            list_id=list_id,
            ranks=(lo, hi),
            url_template=url_template,
            run_id=run_id,
        )
        published = await publish_batch(conn, kafka, spec, entries)
        results.append(
            BatchResult(
                batch=batch,
                partition=key,
                first_rank=lo,
                last_rank=hi,
                in_list=in_list,
                published=published.admitted,
                skipped_stored=published.already_stored,
                invalid=invalid,
                refused=dict(published.refused),
            )
        )
    return results
