"""Admitting URLs to a batch: the URL-seen store and the budgets, decided once, durably.

:func:`admit` takes candidate URLs (listed by a publisher, or found by the discovery stage)
and, inside the caller's transaction, inserts those that are **new to the batch** into
``crawl_urls`` with one ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING``.
Only what that statement returns is published, so a URL seen before — by this process, by a
crashed earlier attempt, or by a concurrent discovery process — is never admitted twice.

Budgets (``Scope.max_pages_per_host``, ``Scope.max_pages``) count admitted page URLs. They
are enforced under row locks taken in a fixed order (host rows sorted, then the batch row), so
two discovery processes admitting URLs of one host serialise on that host and neither can
overshoot. URLs the budget refuses are counted per reason (``budget_host``, ``budget_batch``),
never dead-lettered. Robots and sitemap fetches (``kind`` other than ``page``) are not pages:
they do not count against page budgets, only against ``max_aux_per_host``.
"""

from __future__ import annotations

import uuid
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import asyncpg

from workers.messages import Scope

__all__ = ["Admission", "Candidate", "add_reasons", "admit"]


@dataclass(frozen=True, slots=True)
class Candidate:
    """A URL that may join a batch."""

    url: str
    url_hash: str
    host: str
    depth: int = 0
    kind: str = "page"
    source: str = "list"
    parent: str | None = None
    rank: int | None = None


@dataclass(slots=True)
class Admission:
    """What :func:`admit` decided."""

    admitted: list[tuple[Candidate, str]] = field(default_factory=list)
    """New to the batch: (candidate, request id), in candidate order."""
    seen: int = 0
    """Already in the batch (admitted earlier)."""
    refused: Counter[str] = field(default_factory=Counter)
    """Refused by a budget, by reason (``budget_host``, ``budget_batch``, ``budget_aux``)."""


_INSERT = """
INSERT INTO crawl_urls (batch, url_hash, url, host, kind, depth, source, parent, rank, request_id)
SELECT $1, u.url_hash, u.url, u.host, u.kind, u.depth, u.source, u.parent, u.rank, u.request_id
FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::int4[], $7::text[], $8::text[],
            $9::int4[], $10::text[])
     AS u(url_hash, url, host, kind, depth, source, parent, rank, request_id)
ON CONFLICT (batch, url_hash) DO NOTHING
RETURNING url_hash, request_id
"""


def _dedupe(candidates: Iterable[Candidate]) -> list[Candidate]:
    seen: dict[str, Candidate] = {}
    for c in candidates:
        seen.setdefault(c.url_hash, c)
    return list(seen.values())


async def _already(conn: asyncpg.Connection, batch: str, hashes: list[str]) -> set[str]:
    rows = await conn.fetch(
        "SELECT url_hash FROM crawl_urls WHERE batch = $1 AND url_hash = ANY($2::text[])", batch, hashes
    )
    return {r["url_hash"] for r in rows}


async def _host_allowance(
    conn: asyncpg.Connection, batch: str, hosts: list[str], limit: int
) -> dict[str, int]:
    """Lock the budget rows of ``hosts`` (sorted: no deadlock) and return what each may still admit."""
    await conn.execute(
        "INSERT INTO crawl_host_counts (batch, host) SELECT $1, h FROM unnest($2::text[]) AS h"
        " ON CONFLICT DO NOTHING",
        batch,
        hosts,
    )
    rows = await conn.fetch(
        "SELECT host, admitted FROM crawl_host_counts WHERE batch = $1 AND host = ANY($2::text[])"
        " ORDER BY host FOR UPDATE",
        batch,
        hosts,
    )
    return {r["host"]: max(0, limit - r["admitted"]) for r in rows}


async def admit(
    conn: asyncpg.Connection,
    *,
    batch: str,
    scope: Scope | None,
    candidates: Sequence[Candidate],
    max_aux_per_host: int = 1_000,
) -> Admission:
    """Admit the candidates that are new to ``batch`` and within its budgets (see module doc).

    Must run inside a transaction: the budget locks and the counters commit with the rows.
    """
    out = Admission()
    todo = _dedupe(candidates)
    if not todo:
        return out
    budget_hosts = scope is not None and scope.max_pages_per_host is not None
    budget_batch = scope is not None and scope.max_pages is not None
    hosts = sorted({c.host for c in todo})
    pages_allow: dict[str, int] | None = None
    aux_allow: dict[str, int] = {}
    if budget_hosts:
        assert scope is not None and scope.max_pages_per_host is not None
        pages_allow = await _host_allowance(conn, batch, hosts, scope.max_pages_per_host)
    aux_hosts = sorted({f"aux:{c.host}" for c in todo if c.kind != "page"})
    if aux_hosts:
        aux_allow = await _host_allowance(conn, batch, aux_hosts, max_aux_per_host)
    batch_allow: int | None = None
    if budget_batch:
        assert scope is not None and scope.max_pages is not None
        requested = await conn.fetchval(
            "SELECT requested FROM crawl_batches WHERE batch = $1 FOR UPDATE", batch
        )
        batch_allow = max(0, scope.max_pages - int(requested or 0))
    # With the locks held, everything committed before us is visible: check what is seen.
    already = await _already(conn, batch, [c.url_hash for c in todo])
    chosen: list[Candidate] = []
    for c in todo:
        if c.url_hash in already:
            out.seen += 1
            continue
        if c.kind != "page":
            key = f"aux:{c.host}"
            if aux_allow.get(key, 1) <= 0:
                out.refused["budget_aux"] += 1
                continue
            if key in aux_allow:
                aux_allow[key] -= 1
        else:
            if pages_allow is not None and pages_allow.get(c.host, 0) <= 0:
                out.refused["budget_host"] += 1
                continue
            if batch_allow is not None and batch_allow <= 0:
                out.refused["budget_batch"] += 1
                continue
            if pages_allow is not None:
                pages_allow[c.host] -= 1
            if batch_allow is not None:
                batch_allow -= 1
        chosen.append(c)
    if not chosen:
        return out
    ids = [uuid.uuid4().hex for _ in chosen]
    rows = await conn.fetch(
        _INSERT,
        batch,
        [c.url_hash for c in chosen],
        [c.url for c in chosen],
        [c.host for c in chosen],
        [c.kind for c in chosen],
        [c.depth for c in chosen],
        [c.source for c in chosen],
        [c.parent for c in chosen],
        [c.rank for c in chosen],
        ids,
    )
    inserted = {r["url_hash"]: r["request_id"] for r in rows}
    out.seen += len(chosen) - len(inserted)
    out.admitted = [(c, inserted[c.url_hash]) for c in chosen if c.url_hash in inserted]
    await _count_admitted(conn, batch, [c for c, _ in out.admitted], track_hosts=budget_hosts)
    return out


async def _count_admitted(
    conn: asyncpg.Connection, batch: str, admitted: list[Candidate], *, track_hosts: bool
) -> None:
    if not admitted:
        return
    per_host: dict[str, int] = defaultdict(int)
    listed = discovered = aux = 0
    for c in admitted:
        if c.kind != "page":
            aux += 1
            per_host[f"aux:{c.host}"] += 1
            continue
        if c.source == "list":
            listed += 1
        else:
            discovered += 1
        if track_hosts:
            per_host[c.host] += 1
    if per_host:
        names = list(per_host)
        await conn.execute(
            "INSERT INTO crawl_host_counts (batch, host, admitted)"
            " SELECT $1, h, n FROM unnest($2::text[], $3::int4[]) AS u(h, n)"
            " ON CONFLICT (batch, host) DO UPDATE SET admitted = crawl_host_counts.admitted + EXCLUDED.admitted",
            batch,
            names,
            [per_host[h] for h in names],
        )
    await conn.execute(
        "UPDATE crawl_batches SET requested = requested + $2, listed = listed + $3,"
        " discovered = discovered + $4, aux_requested = aux_requested + $5, completed_at = NULL,"
        " updated_at = now() WHERE batch = $1",
        batch,
        listed + discovered,
        listed,
        discovered,
        aux,
    )


async def add_reasons(
    conn: asyncpg.Connection, batch: str, outcome: str, counts: dict[str, tuple[int, str | None]]
) -> None:
    """Add ``{reason: (n, example url)}`` to the batch's counts for ``outcome`` (n may be negative)."""
    items = [(r, n, ex) for r, (n, ex) in counts.items() if n]
    if not items:
        return
    await conn.execute(
        "INSERT INTO crawl_batch_reasons (batch, outcome, reason, n, example)"
        " SELECT $1, $2, r, n, ex FROM unnest($3::text[], $4::int8[], $5::text[]) AS u(r, n, ex)"
        " ON CONFLICT (batch, outcome, reason) DO UPDATE SET n = crawl_batch_reasons.n + EXCLUDED.n,"
        " example = coalesce(crawl_batch_reasons.example, EXCLUDED.example)",
        batch,
        outcome,
        [i[0] for i in items],
        [i[1] for i in items],
        [i[2] for i in items],
    )
