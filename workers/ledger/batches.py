"""Batch rows: created before the first URL is published, marked published after the last ack."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

import asyncpg

from workers.errors import ConfigError
from workers.messages import Scope

__all__ = ["BatchSpec", "create_batch", "mark_published", "scope_from_json", "scope_to_json"]


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """What a publisher knows about a batch before it publishes."""

    batch: str
    origin: str
    """cli | dagster | api | demo."""
    scope: Scope
    recrawl: bool = False
    sitemaps: bool = False
    partition_key: str | None = None
    list_id: str | None = None
    ranks: tuple[int, int] | None = None
    url_template: str | None = None
    run_id: str | None = None


def scope_to_json(scope: Scope) -> str:
    return json.dumps({f.name: getattr(scope, f.name) for f in dataclasses.fields(scope)})


def scope_from_json(value: str | dict[str, Any] | None) -> Scope:
    if value is None:
        return Scope()
    data = json.loads(value) if isinstance(value, str) else value
    known = {f.name for f in dataclasses.fields(Scope)}
    return Scope(**{k: v for k, v in data.items() if k in known})


async def create_batch(conn: asyncpg.Connection, spec: BatchSpec) -> None:
    """Insert the batch row (status ``publishing``); a batch id can be used once."""
    lo, hi = spec.ranks if spec.ranks is not None else (None, None)
    inserted = await conn.fetchval(
        "INSERT INTO crawl_batches (batch, origin, partition_key, scope, sitemaps, list_id, first_rank,"
        " last_rank, url_template, recrawl, status, run_id, published_at, created_at, updated_at)"
        " VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9, $10, 'publishing', $11, now(), now(), now())"
        " ON CONFLICT (batch) DO NOTHING RETURNING batch",
        spec.batch,
        spec.origin,
        spec.partition_key,
        scope_to_json(spec.scope),
        spec.sitemaps,
        spec.list_id,
        lo,
        hi,
        spec.url_template,
        spec.recrawl,
        spec.run_id,
    )
    if inserted is None:
        raise ConfigError(f"batch {spec.batch!r} already exists: choose another batch id (or omit --batch)")


async def mark_published(conn: asyncpg.Connection, batch: str) -> None:
    """Every record of the batch was acknowledged: it can now complete."""
    await conn.execute(
        "UPDATE crawl_batches SET status = 'published', updated_at = now(),"
        " completed_at = CASE WHEN requested <= stored + unchanged + skipped + dead"
        "   AND aux_requested <= aux_finished THEN now() END"
        " WHERE batch = $1",
        batch,
    )
