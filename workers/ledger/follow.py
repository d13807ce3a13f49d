"""Publish a batch and (optionally) follow it until it completes: what ``crawl`` and ``demo`` run.

Following reads the batch's progress from the ledger every ``poll_s`` (two indexed reads), so
the cost of a poll does not grow with the batch, the topics or the corpus.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence

import asyncpg

from workers.errors import DependencyUnavailable
from workers.frontier import ListEntry
from workers.ledger.batches import BatchSpec
from workers.ledger.progress import BatchProgress, read_progress
from workers.ledger.publish import PublishResult, publish_batch
from workers.settings import PostgresSettings, Settings
from workers.storage.pages import PG_CONNECTION_ERRORS

__all__ = ["connect", "follow_batch", "run_batch"]

Tick = Callable[[BatchProgress], None]


async def connect(settings: Settings | PostgresSettings) -> asyncpg.Connection:
    """A PostgreSQL connection for the CLI, with an error that says what to do when it fails."""
    pg = settings.postgres if isinstance(settings, Settings) else settings
    try:
        return await asyncpg.connect(pg.dsn(), timeout=10)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise DependencyUnavailable(
            f"PostgreSQL at {pg.host}:{pg.port} did not answer ({type(exc).__name__}: {exc}); "
            "start the stack with `streamcrawl up`, or set STREAMCRAWL_PG_HOST/STREAMCRAWL_PG_PORT"
        ) from None


async def follow_batch(
    conn: asyncpg.Connection,
    batch: str,
    *,
    timeout_s: float,
    on_tick: Tick | None = None,
    poll_s: float = 0.5,
) -> BatchProgress:
    """Poll the batch's progress until it is complete or ``timeout_s`` passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        progress = await read_progress(conn, batch)
        if progress is None:
            raise DependencyUnavailable(f"batch {batch} disappeared from the ledger")
        if on_tick is not None:
            on_tick(progress)
        if progress.complete or time.monotonic() >= deadline:
            return progress
        await asyncio.sleep(poll_s)


async def run_batch(
    settings: Settings,
    spec: BatchSpec,
    entries: Sequence[ListEntry],
    *,
    wait: bool,
    timeout_s: float,
    on_tick: Tick | None = None,
) -> tuple[PublishResult, BatchProgress | None]:
    """Publish ``entries`` as ``spec.batch``; with ``wait``, follow it to the end."""
    conn = await connect(settings)
    try:
        result = await publish_batch(conn, settings.kafka, spec, entries)
        if not wait:
            return result, None
    finally:
        await conn.close()
    return result, await _follow_through_outages(settings, spec.batch, timeout_s=timeout_s, on_tick=on_tick)


_LOST = (*PG_CONNECTION_ERRORS, asyncpg.PostgresConnectionError, DependencyUnavailable)
"""What a PostgreSQL restart or outage looks like to a follower (not a reason to stop following)."""


async def _follow_through_outages(
    settings: Settings, batch: str, *, timeout_s: float, on_tick: Tick | None, retry_s: float = 1.0
) -> BatchProgress:
    """``follow_batch`` on a fresh connection, reconnecting when PostgreSQL goes away; the
    crawl itself goes on meanwhile (the daemons wait out the outage), so the follower does too."""
    deadline = time.monotonic() + timeout_s
    last: BatchProgress | None = None
    while True:
        conn: asyncpg.Connection | None = None
        try:
            conn = await connect(settings)
            last = await follow_batch(
                conn, batch, timeout_s=max(0.0, deadline - time.monotonic()), on_tick=on_tick
            )
            return last
        except _LOST:
            if time.monotonic() >= deadline:
                if last is not None:
                    return last
                raise
            await asyncio.sleep(retry_s)
        finally:
            if conn is not None:
                with contextlib.suppress(*_LOST):
                    await conn.close(timeout=5)
