"""Where replayed and parked letters are remembered: two PostgreSQL tables.

``dlq_history`` has one row per letter the replay re-published (its DLQ position, the
record's identity — batch and URL hash, or a payload digest — attempt, stage, error class
and message). ``dlq_parked`` has one row per letter taken out of circulation, with the
payload and its **error chain**: every earlier failure of the same record from
``dlq_history`` plus the last one, oldest first, as a JSON list of
``{attempt, stage, error_class, error_message, failed_at, dlq}``. Parking moves the
record's history rows into its chain.

Both tables are created if missing (and ``error_chain`` added to an older
``dlq_parked``); every write is idempotent (a chunk may be written twice after a crash).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from workers.dlq.policy import letter_identity
from workers.dlq.reading import Record
from workers.messages import DeadLetter
from workers.settings import PostgresSettings
from workers.topics import Topic

__all__ = [
    "HISTORY_TABLE_DDL",
    "PARKED_TABLE_DDL",
    "ParkFn",
    "Parked",
    "RememberFn",
    "count_parked",
    "postgres_history",
    "postgres_parker",
]


@dataclass(frozen=True, slots=True)
class Parked:
    """A dead letter taken out of circulation, with why."""

    record: Record
    letter: DeadLetter
    reason: str


ParkFn = Callable[[Sequence[Parked]], Awaitable[None]]
"""Writes parked letters somewhere durable; must be idempotent (a chunk may be parked twice)."""
RememberFn = Callable[[Sequence[tuple[Record, DeadLetter]]], Awaitable[None]]
"""Records the failures of letters that were replayed (for the error chain); idempotent."""

PARKED_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS dlq_parked (
    dlq_topic        text NOT NULL,
    dlq_partition    integer NOT NULL,
    dlq_offset       bigint NOT NULL,
    source_topic     text NOT NULL,
    stage            text NOT NULL,
    error_class      text NOT NULL,
    error_message    text NOT NULL,
    attempt          integer NOT NULL,
    reason           text NOT NULL,
    url              text,
    url_hash         text,
    batch            text,
    rank             integer,
    record_key       bytea,
    payload          bytea NOT NULL,
    last_failure_at  timestamptz,
    parked_at        timestamptz NOT NULL DEFAULT now(),
    error_chain      jsonb NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
ALTER TABLE dlq_parked ADD COLUMN IF NOT EXISTS error_chain jsonb NOT NULL DEFAULT '[]'::jsonb
"""
HISTORY_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS dlq_history (
    dlq_topic      text NOT NULL,
    dlq_partition  integer NOT NULL,
    dlq_offset     bigint NOT NULL,
    identity       text NOT NULL,
    attempt        integer NOT NULL,
    stage          text NOT NULL,
    error_class    text NOT NULL,
    error_message  text NOT NULL,
    failed_at      double precision NOT NULL,
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
CREATE INDEX IF NOT EXISTS dlq_history_identity ON dlq_history (identity)
"""


def _failure(topic: str, letter: DeadLetter) -> dict[str, Any]:
    return {
        "attempt": letter.attempt,
        "stage": letter.stage,
        "error_class": letter.error_class,
        "error_message": letter.error_message,
        "failed_at": letter.last_failure_at,
        "dlq": topic,
    }


def postgres_history(pg: PostgresSettings) -> RememberFn:
    """A remember function writing replayed letters to ``dlq_history``."""

    async def remember(items: Sequence[tuple[Record, DeadLetter]]) -> None:
        if not items:
            return
        conn = await asyncpg.connect(pg.dsn())
        try:
            await conn.execute(HISTORY_TABLE_DDL)
            await conn.executemany(
                "INSERT INTO dlq_history (dlq_topic, dlq_partition, dlq_offset, identity, attempt, stage,"
                " error_class, error_message, failed_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
                " ON CONFLICT DO NOTHING",
                [
                    (
                        r.topic,
                        r.partition,
                        r.offset,
                        letter_identity(letter),
                        letter.attempt,
                        letter.stage,
                        letter.error_class,
                        letter.error_message,
                        letter.last_failure_at,
                    )
                    for r, letter in items
                ],
            )
        finally:
            await conn.close()

    return remember


async def _chains(conn: asyncpg.Connection, items: Sequence[Parked]) -> dict[str, list[dict[str, Any]]]:
    identities = sorted({letter_identity(p.letter) for p in items})
    rows = await conn.fetch(
        "SELECT identity, dlq_topic, attempt, stage, error_class, error_message, failed_at FROM dlq_history"
        " WHERE identity = ANY($1::text[]) ORDER BY failed_at, attempt",
        identities,
    )
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["identity"], []).append(
            {
                "attempt": row["attempt"],
                "stage": row["stage"],
                "error_class": row["error_class"],
                "error_message": row["error_message"],
                "failed_at": row["failed_at"],
                "dlq": row["dlq_topic"],
            }
        )
    return out


def postgres_parker(pg: PostgresSettings) -> ParkFn:
    """A park function writing to ``dlq_parked`` with each letter's error chain (idempotent)."""

    async def park(items: Sequence[Parked]) -> None:
        conn = await asyncpg.connect(pg.dsn())
        try:
            await conn.execute(PARKED_TABLE_DDL)
            await conn.execute(HISTORY_TABLE_DDL)
            async with conn.transaction():
                chains = await _chains(conn, items)
                rows = []
                for p in items:
                    identity = letter_identity(p.letter)
                    chain = [*chains.get(identity, []), _failure(p.record.topic, p.letter)]
                    rows.append(
                        (
                            p.record.topic,
                            p.record.partition,
                            p.record.offset,
                            p.letter.source_topic,
                            p.letter.stage,
                            p.letter.error_class,
                            p.letter.error_message,
                            p.letter.attempt,
                            p.reason,
                            p.letter.url,
                            p.letter.url_hash,
                            p.letter.batch,
                            p.letter.rank,
                            p.letter.key,
                            p.letter.payload,
                            p.letter.last_failure_at,
                            json.dumps(chain),
                        )
                    )
                await conn.executemany(
                    "INSERT INTO dlq_parked (dlq_topic, dlq_partition, dlq_offset, source_topic, stage,"
                    " error_class, error_message, attempt, reason, url, url_hash, batch, rank, record_key,"
                    " payload, last_failure_at, error_chain) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,"
                    " $10, $11, $12, $13, $14, $15, to_timestamp($16), $17::jsonb) ON CONFLICT DO NOTHING",
                    rows,
                )
                await conn.execute(
                    "DELETE FROM dlq_history WHERE identity = ANY($1::text[])",
                    sorted({letter_identity(p.letter) for p in items}),
                )
        finally:
            await conn.close()

    return park


async def count_parked(pg: PostgresSettings, *, dlq_topic: Topic | None = None) -> int:
    """Parked letters, in total or of one DLQ (0 when nothing was ever parked)."""
    conn = await asyncpg.connect(pg.dsn())
    try:
        if await conn.fetchval("SELECT to_regclass('dlq_parked')") is None:
            return 0
        if dlq_topic is None:
            value = await conn.fetchval("SELECT count(*) FROM dlq_parked")
        else:
            value = await conn.fetchval(
                "SELECT count(*) FROM dlq_parked WHERE dlq_topic = $1", dlq_topic.name
            )
        return int(value)
    finally:
        await conn.close()
