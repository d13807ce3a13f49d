"""After a crawl: is every URL accounted for, once, with nothing left over in S3?

One place knows how rows reference objects (``orphan_report`` reads them back through
``PageStore``), so a change of the object layout is absorbed here, not in every drill.

``assert_accounted`` is the drills' end condition:

* every requested URL is stored or dead-lettered for a stated reason (0 lost), and each
  ended the way its demo kind says it must (a page that should be stored was not
  dead-lettered because a daemon was killed under it);
* one ``pages`` row of the batch per stored URL and no row for anything else (0 duplicate rows);
* the bucket holds exactly the objects the store's rows reference (0 orphan objects, 0 missing).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from minio import Minio

from workers.demoweb import DemoURL
from workers.progress import BatchProgress
from workers.settings import PostgresSettings, S3Settings, Settings, StorageSettings
from workers.storage import PageStore
from workers.urls import normalize_url, url_hash

__all__ = [
    "OrphanReport",
    "Outcomes",
    "assert_accounted",
    "create_database",
    "object_keys",
    "orphan_report",
]

_PARTS = ("html", "markdown", "rendered")


@dataclass(frozen=True, slots=True)
class OrphanReport:
    objects: frozenset[str]
    """Every key in the bucket."""
    referenced: frozenset[str]
    """Every key a row points at."""

    @property
    def orphans(self) -> frozenset[str]:
        """Objects no row references."""
        return self.objects - self.referenced

    @property
    def missing(self) -> frozenset[str]:
        """Keys rows reference that the bucket does not hold."""
        return self.referenced - self.objects


def _list_keys(s3: S3Settings) -> set[str]:
    client = Minio(s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=s3.secure)
    if not client.bucket_exists(s3.bucket):
        return set()
    return {str(o.object_name) for o in client.list_objects(s3.bucket, recursive=True)}


async def object_keys(s3: S3Settings) -> set[str]:
    return await asyncio.to_thread(_list_keys, s3)


async def orphan_report(store: PageStore, s3: S3Settings) -> OrphanReport:
    """Objects in the bucket against the keys the stored rows reference (the whole store)."""
    referenced: set[str] = set()
    async for page in store.iter_pages(with_markdown=False):
        row = await store.get_page(page.url_hash)
        if row is not None:
            referenced |= {key for name in _PARTS if (key := row.refs.key(name))}
    return OrphanReport(objects=frozenset(await object_keys(s3)), referenced=frozenset(referenced))


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
    """How each URL of a batch ended, by URL hash (the only view the checks need)."""

    requested: int
    stored: frozenset[str]
    """Stored (or skipped): reached ``storage.saved``."""
    reasons: dict[str, str]
    """Dead-lettered and never stored: the letter's "stage: ErrorClass: message"."""

    @classmethod
    def from_progress(cls, progress: BatchProgress) -> Outcomes:
        """From the topic-following progress model (workers/progress.py)."""
        stored = frozenset(progress.seen.get("storage.saved", set()))
        reasons = {h: r for h, r in progress.reasons.items() if h not in stored}
        return cls(requested=progress.requested, stored=stored, reasons=reasons)

    @property
    def lost(self) -> int:
        return max(0, self.requested - len(self.stored) - len(self.reasons))


async def assert_accounted(
    settings: Settings, urls: Sequence[DemoURL], progress: BatchProgress, *, batch: str, context: object = ""
) -> dict[str, int]:
    """The drills' end condition (see the module doc); returns the counts."""
    outcomes = Outcomes.from_progress(progress)
    assert outcomes.lost == 0 and outcomes.requested == len(urls), (progress.summary(), context)
    stored = outcomes.stored
    for u in urls:
        h = url_hash(normalize_url(u.url))
        if u.expected in ("stored", "skipped"):
            assert h in stored, (f"{u.kind} {u.url} expected stored; got {outcomes.reasons.get(h)}", context)
        elif u.expected == "dead_lettered":
            assert h not in stored and outcomes.reasons.get(h, "").strip(), (f"{u.kind} {u.url}", context)
    requested = {url_hash(normalize_url(u.url)) for u in urls}
    async with PageStore(settings.postgres, settings.s3, StorageSettings()) as store:
        hashes = [p.url_hash async for p in store.iter_pages(batch=batch, with_markdown=False)]
        report = await orphan_report(store, settings.s3)
    assert set(hashes) == stored and len(hashes) == len(stored), (
        "one row per stored URL",
        len(hashes),
        len(stored),
        context,
    )
    assert set(hashes) <= requested, ("rows only for requested URLs", context)
    assert not report.orphans, (f"{len(report.orphans)} orphan objects", sorted(report.orphans)[:5], context)
    assert not report.missing, (f"{len(report.missing)} missing objects", sorted(report.missing)[:5], context)
    return {
        "requested": len(urls),
        "stored": len(stored),
        "dead_lettered": len(outcomes.reasons),
        "rows": len(hashes),
        "objects": len(report.objects),
    }
