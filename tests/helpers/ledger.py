"""Publishing a batch and reading its ledger rows, for integration tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import asyncpg

from workers.frontier import parse_list_lines
from workers.ledger import BatchProgress, BatchSpec
from workers.ledger.follow import run_batch
from workers.messages import Scope
from workers.settings import Settings

__all__ = ["crawl_batch", "ledger_states"]


async def crawl_batch(
    settings: Settings,
    urls: Sequence[str],
    batch: str,
    *,
    timeout_s: float,
    scope: Scope | None = None,
    sitemaps: bool = False,
    recrawl: bool = False,
    on_tick: Callable[[BatchProgress], None] | None = None,
) -> BatchProgress:
    """Publish ``urls`` as ``batch`` (like `streamcrawl crawl --wait`) and wait for it to complete
    (``on_tick`` sees each progress poll)."""
    parsed = parse_list_lines(list(urls), scheme="http")
    spec = BatchSpec(batch=batch, origin="cli", scope=scope or Scope(), sitemaps=sitemaps, recrawl=recrawl)
    _result, progress = await run_batch(
        settings, spec, parsed.entries, wait=True, timeout_s=timeout_s, on_tick=on_tick
    )
    assert progress is not None
    return progress


async def ledger_states(settings: Settings, batch: str) -> dict[str, asyncpg.Record]:
    """url_hash -> the batch's crawl_urls row (url, kind, depth, state, reason, route, published)."""
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        rows = await conn.fetch(
            "SELECT url_hash, url, kind, depth, source, state, reason, route, published"
            " FROM crawl_urls WHERE batch = $1",
            batch,
        )
    finally:
        await conn.close()
    return {r["url_hash"]: r for r in rows}
