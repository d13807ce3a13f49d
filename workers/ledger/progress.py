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
import math
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from workers.settings import IngestorSettings

__all__ = [
    "BatchProgress",
    "Eta",
    "RateMeter",
    "estimate_eta",
    "fetch_budget_s",
    "list_progress",
    "read_progress",
    "recent_progress",
    "tail_size",
]


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

    @property
    def finished_per_s(self) -> float:
        """URLs accounted for (any final state) per second over the batch's duration: the ETA's rate."""
        d = self.duration_s
        return self.accounted / d if d else 0.0

    def eta(
        self,
        *,
        rate: float | None = None,
        budget_s: float | None = None,
        now: float | None = None,
        tail_since: float | None = None,
    ) -> Eta:
        """:func:`estimate_eta` at ``rate`` URLs/s (default: the batch's own average)."""
        rate = self.finished_per_s if rate is None else rate
        return estimate_eta(self, rate=rate, budget_s=budget_s, now=now, tail_since=tail_since)

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


async def recent_progress(conn: asyncpg.Connection | asyncpg.Pool, *, limit: int = 8) -> list[BatchProgress]:
    """The open batches (newest first), then the most recently completed ones; ``limit`` in all."""
    if not await conn.fetchval("SELECT to_regclass('crawl_batches') IS NOT NULL"):
        return []
    rows = await conn.fetch(
        "SELECT batch FROM crawl_batches ORDER BY completed_at IS NOT NULL, coalesce(completed_at,"
        " created_at) DESC LIMIT $1",
        limit,
    )
    return await list_progress(conn, [r["batch"] for r in rows])


@dataclass(frozen=True, slots=True)
class Eta:
    """How long a batch still needs; see :func:`estimate_eta`."""

    seconds: float | None
    """The rate's estimate; None when the rate says nothing (no rate yet, stalled, or the tail)."""
    bound: float | None = None
    """In the tail: the longest the last URLs can still take (from the ingestor's fetch budget)."""
    last: int = 0
    """In the tail: how many URLs are left (the batch's slow ones, typically)."""

    def describe(self) -> str:
        """``ETA 12s``, ``ETA ?``; in the tail ``finishing the last 3 URLs, ≤ 1m52s``."""
        if not self.last:
            return "ETA ?" if self.seconds is None else f"ETA {_clock(self.seconds)}"
        urls = f"the last {self.last} URL{'s' if self.last != 1 else ''}"
        if self.bound is None:
            return f"finishing {urls}"
        return f"finishing {urls}, ≤ {_clock(math.ceil(self.bound))}"  # a bound rounds up


def _clock(seconds: float) -> str:
    s = max(0, round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def fetch_budget_s(ingestor: IngestorSettings) -> float:
    """The longest one URL spends in the ingestor's retries: every attempt's timeout and the waits
    between attempts (a Retry-After up to ``retry_after_cap_s``, else the backoff) — the ETA's
    bound in a batch's tail."""
    attempts = ingestor.max_retries + 1
    waits = ingestor.max_retries * max(ingestor.retry_after_cap_s, ingestor.retry_max_delay_s)
    return float(attempts * ingestor.total_timeout_s + waits)


def tail_size(p: BatchProgress) -> int:
    """URLs left below which a batch is in its tail: 20, or 2% of a batch over 1,000 URLs."""
    return max(20, p.requested // 50)


def estimate_eta(
    p: BatchProgress,
    *,
    rate: float,
    budget_s: float | None = None,
    now: float | None = None,
    tail_since: float | None = None,
) -> Eta:
    """Time left for ``p`` at ``rate`` URLs accounted for per second — honest in the tail.

    While many URLs are left, the estimate is ``in_flight / rate``. A batch's last URLs are
    typically its slow ones (timeouts being retried, Retry-After waits), and the rate of the
    bulk says nothing about them: measured on a 600-URL demo crawl, ``in_flight / rate`` read
    0.1 s for the last 12.6 s (docs/measure_eta.py). So in the **tail** (:func:`tail_size`
    URLs or fewer left) there is no rate estimate, only what is known: how many URLs are left
    and the bound — every URL left was in flight when the tail began (``tail_since``, epoch
    seconds; default the last outcome) and none spends longer than ``budget_s`` in the
    ingestor (every attempt's timeout and the waits between attempts). Past the bound (a
    host's breaker re-queued a URL) only the count is left. When many URLs are left and none
    finished for 3 rate intervals (at least 3 s), the pipeline stalled: ``ETA ?``.
    """
    if p.complete:
        return Eta(0.0)
    remaining = p.in_flight
    if remaining <= 0:
        return Eta(None)  # published rows still being counted
    t = time.time() if now is None else now
    last = p.last_outcome_at or p.published_at
    last_ts = last.timestamp() if last is not None else t
    if remaining > tail_size(p):
        stalled = rate <= 0 or t - last_ts > max(3.0, 3.0 / rate)
        return Eta(None if stalled else remaining / rate)
    since = tail_since if tail_since is not None else last_ts
    bound = None if budget_s is None else since + budget_s - t
    return Eta(None, bound=bound if bound is not None and bound > 0 else None, last=remaining)


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
