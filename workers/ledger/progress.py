"""The one batch-progress model: what a batch requested and what became of it.

Read from the ledger's counters (``crawl_batches``) and reason counts
(``crawl_batch_reasons``) — two indexed reads whatever the batch size, so a progress poll
costs the same at 100k stored pages as at 1k. The CLI (``crawl --wait``, ``status``), the
Dagster sensors and checks and the API all show this model.

* ``requested`` — page URLs the batch asked for: ``listed`` + ``discovered`` (links and sitemaps).
* ``stored`` / ``unchanged`` (a 304 to a recrawl) / ``skipped`` (on purpose: robots,
  noindex, non-HTML, binary, already stored; by reason) / ``dead_lettered`` (by the final
  error class). A URL that was dead-lettered and later stored by a replay counts as stored, once.
* ``in_flight`` — requested and not yet in one of those states (plus robots/sitemap fetches
  not yet read).
* ``dropped_by_reason`` — links found but never requested (out of scope, too deep, nofollow,
  an asset, a budget): counted per occurrence, they are not part of the batch.
* complete — published, and nothing in flight.
"""

from __future__ import annotations

import json
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

__all__ = ["BatchProgress", "RateMeter", "list_progress", "read_progress"]


@dataclass(frozen=True, slots=True)
class BatchProgress:
    batch: str
    origin: str
    status: str
    partition_key: str | None
    scope: dict[str, Any] | None
    created_at: datetime | None
    published_at: datetime | None
    completed_at: datetime | None
    first_outcome_at: datetime | None
    last_outcome_at: datetime | None
    requested: int
    listed: int
    discovered: int
    fetched: int
    stored: int
    unchanged: int
    skipped: int
    dead_lettered: int
    fast: int
    rich: int
    aux_requested: int
    aux_finished: int
    skipped_by_reason: dict[str, int] = field(default_factory=dict)
    dead_by_reason: dict[str, int] = field(default_factory=dict)
    dropped_by_reason: dict[str, int] = field(default_factory=dict)
    aux_dead_by_reason: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    """``"<outcome>:<reason>"`` -> one URL with that outcome, for triage."""

    @property
    def accounted(self) -> int:
        return self.stored + self.unchanged + self.skipped + self.dead_lettered

    @property
    def in_flight(self) -> int:
        return max(0, self.requested - self.accounted) + max(0, self.aux_requested - self.aux_finished)

    @property
    def published(self) -> bool:
        return self.status == "published"

    @property
    def complete(self) -> bool:
        return self.published and self.in_flight == 0

    @property
    def dlq_rate(self) -> float:
        return self.dead_lettered / self.requested if self.requested else 0.0

    @property
    def duration_s(self) -> float | None:
        """Publish to last outcome (to now while running)."""
        if self.published_at is None:
            return None
        end = self.completed_at or (self.last_outcome_at if self.complete else None)
        end_ts = end.timestamp() if end is not None else time.time()
        return max(0.0, end_ts - self.published_at.timestamp())

    @property
    def pages_per_s(self) -> float:
        """Stored (and unchanged) pages per second over the batch's duration."""
        d = self.duration_s
        return (self.stored + self.unchanged) / d if d else 0.0

    def summary(self) -> dict[str, Any]:
        """The JSON summary of ``crawl --json`` and the API (stable keys)."""
        return {
            "batch": self.batch,
            "status": "complete" if self.complete else self.status,
            "requested": self.requested,
            "listed": self.listed,
            "discovered": self.discovered,
            "fetched": self.fetched,
            "stored": self.stored,
            "unchanged": self.unchanged,
            "skipped": self.skipped,
            "dead_lettered": self.dead_lettered,
            "in_flight": self.in_flight,
            "fast": self.fast,
            "rich": self.rich,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "dead_by_reason": dict(self.dead_by_reason),
            "dropped_by_reason": dict(self.dropped_by_reason),
            "sitemaps_read": self.aux_finished - sum(self.aux_dead_by_reason.values()),
            "pages_per_s": round(self.pages_per_s, 2),
            "duration_s": None if self.duration_s is None else round(self.duration_s, 1),
        }


_COLUMNS = (
    "batch, origin, status, partition_key, scope, created_at, published_at, completed_at,"
    " first_outcome_at, last_outcome_at, requested, listed, discovered, fetched, stored, unchanged,"
    " skipped, dead, fast, rich, aux_requested, aux_finished"
)


def _from_rows(row: asyncpg.Record, reasons: Sequence[asyncpg.Record]) -> BatchProgress:
    by: dict[str, dict[str, int]] = {"skipped": {}, "dead": {}, "dropped": {}, "aux_dead": {}}
    examples: dict[str, str] = {}
    for r in reasons:
        if r["n"] <= 0 or r["outcome"] not in by:
            continue
        by[r["outcome"]][r["reason"]] = int(r["n"])
        if r["example"]:
            examples[f"{r['outcome']}:{r['reason']}"] = r["example"]
    scope = row["scope"]
    if isinstance(scope, str):
        scope = json.loads(scope)
    return BatchProgress(
        batch=row["batch"],
        origin=row["origin"],
        status=row["status"],
        partition_key=row["partition_key"],
        scope=scope if isinstance(scope, dict) else None,
        created_at=row["created_at"],
        published_at=row["published_at"],
        completed_at=row["completed_at"],
        first_outcome_at=row["first_outcome_at"],
        last_outcome_at=row["last_outcome_at"],
        requested=row["requested"],
        listed=row["listed"],
        discovered=row["discovered"],
        fetched=row["fetched"],
        stored=row["stored"],
        unchanged=row["unchanged"],
        skipped=row["skipped"],
        dead_lettered=row["dead"],
        fast=row["fast"],
        rich=row["rich"],
        aux_requested=row["aux_requested"],
        aux_finished=row["aux_finished"],
        skipped_by_reason=by["skipped"],
        dead_by_reason=by["dead"],
        dropped_by_reason=by["dropped"],
        aux_dead_by_reason=by["aux_dead"],
        examples=examples,
    )


async def read_progress(conn: asyncpg.Connection | asyncpg.Pool, batch: str) -> BatchProgress | None:
    """The progress of one batch, or None when no such batch exists."""
    found = await list_progress(conn, [batch])
    return found[0] if found else None


async def list_progress(
    conn: asyncpg.Connection | asyncpg.Pool, batches: Sequence[str]
) -> list[BatchProgress]:
    """Progress of the given batches (those that exist), in the order asked."""
    if not batches:
        return []
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM crawl_batches WHERE batch = ANY($1::text[])", list(batches)
    )
    reasons = await conn.fetch(
        "SELECT batch, outcome, reason, n, example FROM crawl_batch_reasons WHERE batch = ANY($1::text[])",
        list(batches),
    )
    grouped: dict[str, list[asyncpg.Record]] = {}
    for r in reasons:
        grouped.setdefault(r["batch"], []).append(r)
    found = {r["batch"]: _from_rows(r, grouped.get(r["batch"], [])) for r in rows}
    return [found[b] for b in batches if b in found]


@dataclass(slots=True)
class RateMeter:
    """Pages per second over a sliding window of samples, and the ETA it implies."""

    window_s: float = 30.0
    _samples: deque[tuple[float, int]] = field(default_factory=deque)

    def add(self, done: int, *, now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        self._samples.append((t, done))
        while len(self._samples) > 2 and t - self._samples[0][0] > self.window_s:
            self._samples.popleft()

    def rate(self) -> float:
        if len(self._samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self._samples[0], self._samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def eta_s(self, remaining: int) -> float | None:
        rate = self.rate()
        if remaining <= 0:
            return 0.0
        return remaining / rate if rate > 0 else None
