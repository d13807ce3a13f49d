"""After a crawl: is every URL accounted for, once, with nothing left over in S3?

Outcomes come from the batch's ledger rows (what `crawl --wait` reports); object checks go
through ``PageStore.fsck``, so a change of the object layout is absorbed by the store.

``assert_accounted`` is the drills' end condition:

* every requested URL is stored or dead-lettered for a stated reason (0 lost), and each
  ended the way its demo kind says it must (a page that should be stored was not
  dead-lettered because a daemon was killed under it);
* one ``pages`` row of the batch per stored URL and no row for anything else (0 duplicate rows);
* no row points at missing content, and whatever a killed writer left unreferenced is
  reclaimed by ``fsck --repair`` (then the store is clean).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from tests.helpers.ledger import ledger_states
from workers.demoweb import DemoURL
from workers.ledger import BatchProgress
from workers.settings import PostgresSettings, Settings, StorageSettings
from workers.storage import PageStore
from workers.urls import normalize_url, url_hash

__all__ = [
    "Outcomes",
    "assert_accounted",
    "create_database",
]


async def create_database(pg: PostgresSettings, name: str) -> PostgresSettings:
    """A fresh database on ``pg``'s server (a drill's own ``pages`` table)."""
    conn = await asyncpg.connect(pg.dsn("postgres"))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return pg.model_copy(update={"database": name})


@dataclass(frozen=True, slots=True)
class Outcomes:
    """How each URL of a batch ended, by URL hash, read from the batch's ledger rows."""

    requested: int
    ended: frozenset[str]
    """Stored, unchanged or skipped (robots, noindex, ...): not a failure."""
    stored: frozenset[str]
    """Stored: the batch must have exactly one ``pages`` row for each."""
    reasons: dict[str, str]
    """Dead-lettered and never stored: the final reason."""

    @classmethod
    async def from_ledger(cls, settings: Settings, batch: str) -> Outcomes:
        states = await ledger_states(settings, batch)
        return cls(
            requested=len(states),
            ended=frozenset(h for h, r in states.items() if r["state"] in ("stored", "unchanged", "skipped")),
            stored=frozenset(h for h, r in states.items() if r["state"] == "stored"),
            reasons={h: str(r["reason"] or "") for h, r in states.items() if r["state"] == "dead"},
        )

    @property
    def lost(self) -> int:
        return max(0, self.requested - len(self.ended) - len(self.reasons))


async def assert_accounted(
    settings: Settings, urls: Sequence[DemoURL], progress: BatchProgress, *, batch: str, context: object = ""
) -> dict[str, int]:
    """The drills' end condition (see the module doc); returns the counts."""
    assert progress.complete, (progress.summary(), context)
    outcomes = await Outcomes.from_ledger(settings, batch)
    assert outcomes.lost == 0 and outcomes.requested == len(urls), (progress.summary(), context)
    for u in urls:
        h = url_hash(normalize_url(u.url))
        if u.expected in ("stored", "skipped"):
            assert h in outcomes.ended, (
                f"{u.kind} {u.url} expected stored; got {outcomes.reasons.get(h)}",
                context,
            )
        elif u.expected == "dead_lettered":
            assert h not in outcomes.ended and outcomes.reasons.get(h, "").strip(), (
                f"{u.kind} {u.url}",
                context,
            )
    requested = {url_hash(normalize_url(u.url)) for u in urls}
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        hashes = [
            r["url_hash"] for r in await conn.fetch("SELECT url_hash FROM pages WHERE batch = $1", batch)
        ]
    finally:
        await conn.close()
    assert set(hashes) == outcomes.stored and len(hashes) == len(outcomes.stored), (
        "one row per stored URL",
        len(hashes),
        len(outcomes.stored),
        context,
    )
    assert set(hashes) <= requested, ("rows only for requested URLs", context)
    async with PageStore(settings.postgres, settings.s3, StorageSettings()) as store:
        report = await store.fsck(grace_s=0)
        assert not report.missing, (
            f"{len(report.missing)} rows whose content is gone",
            report.missing[:5],
            context,
        )
        # A writer killed between its S3 PUT and its row commit leaves an object nobody
        # references; fsck --repair must reclaim exactly those, leaving a clean store.
        orphans = len(report.orphans)
        if orphans:
            await store.fsck(repair=True, grace_s=0)
            assert (await store.fsck(grace_s=0)).clean, context
    return {
        "requested": len(urls),
        "stored": len(outcomes.stored),
        "dead_lettered": len(outcomes.reasons),
        "rows": len(hashes),
        "objects": report.objects,
        "orphans_reclaimed": orphans,
    }
