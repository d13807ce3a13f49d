"""The control plane's own tables, created if missing (idempotent, advisory-locked).

::

    tranco_snapshots    one row per loaded list snapshot (the tranco_list partition)
    tranco_lists        (list_id, rank, domain): the snapshot's rows, COPY-loaded
    dlq_parked          dead letters taken out of circulation (workers/dlq.py)

The ``pages`` table and the crawl ledger (``crawl_batches``, ``crawl_urls``, … — what a batch
requested and what became of it) belong to the workers' numbered migrations
(workers/storage/migrations), which :func:`ensure_schema` applies first.
"""

from __future__ import annotations

import asyncpg

from workers.dlq import PARKED_TABLE_DDL
from workers.storage.migrate import apply_migrations

__all__ = ["SCHEMA_LOCK_KEY", "ensure_schema"]

SCHEMA_LOCK_KEY = 0x5C_DA_65_7E
"""Advisory-lock key serialising concurrent schema creation (sensors, runs, the CLI)."""

_DDL = (
    """
    CREATE TABLE IF NOT EXISTS tranco_snapshots (
        list_id         text PRIMARY KEY,
        source          text NOT NULL,
        row_count       integer NOT NULL,
        rejected_count  integer NOT NULL,
        loaded_at       timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS tranco_lists (
        list_id  text NOT NULL,
        rank     integer NOT NULL,
        domain   text NOT NULL,
        PRIMARY KEY (list_id, rank)
    )
    """,
    PARKED_TABLE_DDL,
)


async def ensure_schema(conn: asyncpg.Connection) -> None:
    """Apply the workers' migrations, then create the control plane's tables if they are missing."""
    await apply_migrations(conn)
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
        for ddl in _DDL:
            await conn.execute(ddl)
