"""The control plane's own tables, created if missing (idempotent, advisory-locked).

::

    tranco_snapshots    one row per loaded list snapshot (the tranco_list partition)
    tranco_lists        (list_id, rank, domain): the snapshot's rows, COPY-loaded
    crawl_batches       one row per frontier partition published (its crawl batch)
    crawl_batch_urls    the URL hashes a batch published: what "complete" is measured against
    crawl_dead_letters  (batch, url_hash) seen on any *.dlq, recorded by completion_sensor
    dlq_parked          dead letters taken out of circulation (workers/dlq.py)

The ``pages`` table belongs to the storage layer (workers/storage/migrations).
"""

from __future__ import annotations

import asyncpg

from workers.dlq import PARKED_TABLE_DDL

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
    """
    CREATE TABLE IF NOT EXISTS crawl_batches (
        batch         text PRIMARY KEY,
        list_id       text NOT NULL,
        first_rank    integer NOT NULL,
        last_rank     integer NOT NULL,
        url_template  text NOT NULL,
        recrawl       boolean NOT NULL,
        requested     integer NOT NULL,
        skipped       integer NOT NULL,
        status        text NOT NULL,
        run_id        text,
        published_at  timestamptz,
        updated_at    timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS crawl_batch_urls (
        batch     text NOT NULL,
        url_hash  text COLLATE "C" NOT NULL,
        url       text NOT NULL,
        rank      integer,
        PRIMARY KEY (batch, url_hash)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS crawl_dead_letters (
        batch        text NOT NULL,
        url_hash     text COLLATE "C" NOT NULL,
        dlq_topic    text NOT NULL,
        error_class  text NOT NULL,
        failed_at    timestamptz NOT NULL,
        PRIMARY KEY (batch, url_hash)
    )
    """,
    PARKED_TABLE_DDL,
)


async def ensure_schema(conn: asyncpg.Connection) -> None:
    """Create the control plane's tables if they are missing."""
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SCHEMA_LOCK_KEY)
        for ddl in _DDL:
            await conn.execute(ddl)
