"""Recording what became of each URL of a batch, exactly once per state change.

A URL leaves ``queued`` for one final state; a later, better verdict may replace a worse one
(a dead letter whose replay was stored), never the other way round::

    queued (0)  <  dead (1)  <  skipped (2) = unchanged (2)  <  stored (3)

:func:`record_outcomes` updates the rows whose state improves and returns the transitions it
made (old state → new state), so the per-batch counters move by exactly the rows that
changed: a redelivered ``storage.saved`` record or a dead letter read twice changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from workers.ledger.admission import add_reasons

__all__ = ["STATE_RANK", "Outcome", "Transition", "record_outcomes"]

STATE_RANK = {"queued": 0, "dead": 1, "skipped": 2, "unchanged": 2, "stored": 3}
_COUNTER = {"stored": "stored", "unchanged": "unchanged", "skipped": "skipped", "dead": "dead"}


@dataclass(frozen=True, slots=True)
class Outcome:
    batch: str
    url_hash: str
    state: str
    """stored | unchanged | skipped | dead."""
    reason: str | None = None
    route: str | None = None
    fetched: bool = True
    """Whether the URL got past the fetch (a dead letter of the ingestor did not)."""
    example: str | None = None
    """The URL, kept as the example of its reason."""


@dataclass(frozen=True, slots=True)
class Transition:
    batch: str
    url_hash: str
    kind: str
    old_state: str
    old_reason: str | None
    old_route: str | None
    old_fetched: bool
    new: Outcome


_UPDATE = """
WITH o AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::bool[])
        AS o(batch, url_hash, state, reason, route, rank, fetched)
), old AS (
    SELECT u.batch, u.url_hash, u.state, u.reason, u.route, u.kind, u.fetched
    FROM crawl_urls u JOIN o ON o.batch = u.batch AND o.url_hash = u.url_hash
    FOR UPDATE OF u
), upd AS (
    UPDATE crawl_urls u
    SET state = o.state, reason = o.reason, route = coalesce(o.route, u.route), fetched = o.fetched,
        finished_at = now()
    FROM o JOIN old ON old.batch = o.batch AND old.url_hash = o.url_hash
    WHERE u.batch = o.batch AND u.url_hash = o.url_hash
      AND o.rank > (CASE old.state WHEN 'queued' THEN 0 WHEN 'dead' THEN 1 WHEN 'stored' THEN 3 ELSE 2 END)
    RETURNING u.batch, u.url_hash, old.kind, old.state AS old_state, old.reason AS old_reason,
              old.route AS old_route, old.fetched AS old_fetched
)
SELECT * FROM upd
"""


def _best(outcomes: Sequence[Outcome]) -> list[Outcome]:
    best: dict[tuple[str, str], Outcome] = {}
    for o in outcomes:
        key = (o.batch, o.url_hash)
        seen = best.get(key)
        if seen is None or STATE_RANK[o.state] > STATE_RANK[seen.state]:
            best[key] = o
    return list(best.values())


async def record_outcomes(conn: asyncpg.Connection, outcomes: Sequence[Outcome]) -> list[Transition]:
    """Apply ``outcomes`` (inside the caller's transaction) and move the batch counters."""
    todo = _best(outcomes)
    if not todo:
        return []
    rows = await conn.fetch(
        _UPDATE,
        [o.batch for o in todo],
        [o.url_hash for o in todo],
        [o.state for o in todo],
        [o.reason for o in todo],
        [o.route for o in todo],
        [STATE_RANK[o.state] for o in todo],
        [o.fetched for o in todo],
    )
    by_key = {(o.batch, o.url_hash): o for o in todo}
    moves = [
        Transition(
            batch=r["batch"],
            url_hash=r["url_hash"],
            kind=r["kind"],
            old_state=r["old_state"],
            old_reason=r["old_reason"],
            old_route=r["old_route"],
            old_fetched=r["old_fetched"],
            new=by_key[(r["batch"], r["url_hash"])],
        )
        for r in rows
    ]
    await _move_counters(conn, moves)
    return moves


async def _move_counters(conn: asyncpg.Connection, moves: list[Transition]) -> None:
    cols = ("stored", "unchanged", "skipped", "dead", "fetched", "fast", "rich", "aux_finished")
    delta: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys(cols, 0))
    reasons: dict[tuple[str, str], dict[str, tuple[int, str | None]]] = defaultdict(dict)

    def bump(batch: str, outcome: str, reason: str | None, n: int, example: str | None) -> None:
        key = reason or "unknown"
        old_n, old_ex = reasons[(batch, outcome)].get(key, (0, None))
        reasons[(batch, outcome)][key] = (old_n + n, old_ex or example)

    for m in moves:
        d = delta[m.batch]
        new = m.new
        if m.kind != "page":
            if m.old_state == "queued":
                d["aux_finished"] += 1
            if new.state == "dead":
                bump(m.batch, "aux_dead", new.reason, 1, new.example)
            if m.old_state == "dead":
                bump(m.batch, "aux_dead", m.old_reason, -1, None)
            continue
        if m.old_state != "queued":
            d[_COUNTER[m.old_state]] -= 1
            d["fetched"] -= int(m.old_fetched)
            if m.old_route in ("fast", "rich"):
                d[m.old_route] -= 1
            if m.old_state in ("skipped", "dead"):
                bump(m.batch, m.old_state, m.old_reason, -1, None)
        d[_COUNTER[new.state]] += 1
        d["fetched"] += int(new.fetched)
        if new.route in ("fast", "rich") and new.state in ("stored", "unchanged"):
            d[new.route] += 1
        if new.state in ("skipped", "dead"):
            bump(m.batch, new.state, new.reason, 1, new.example)
    for batch, d in delta.items():
        await conn.execute(
            "UPDATE crawl_batches SET "
            + ", ".join(f"{c} = {c} + ${i}" for i, c in enumerate(cols, 2))
            + ", first_outcome_at = coalesce(first_outcome_at, now()), last_outcome_at = now(),"
            " updated_at = now() WHERE batch = $1",
            batch,
            *(d[c] for c in cols),
        )
    for (batch, outcome), counts in reasons.items():
        await add_reasons(conn, batch, outcome, counts)
    await conn.execute(
        "UPDATE crawl_batches SET completed_at = now() WHERE batch = ANY($1::text[]) AND completed_at IS NULL"
        " AND status = 'published' AND requested <= stored + unchanged + skipped + dead"
        " AND aux_requested <= aux_finished",
        list(delta),
    )
