"""Consistency between rows and objects: ``streamcrawl fsck`` and the garbage collector.

:func:`check` lists every content object (``warc/``, and the first build's ``pages/`` and
``segments/``) and walks every row (a server-side cursor: memory stays flat), then reports

* **rows without objects**: a row whose object is missing or shorter than the byte range
  the row points at (its content is lost: ``--repair`` deletes the row, so the next crawl of
  the URL stores it again);
* **objects without rows**: an object no row points at — written by a batch that was
  redelivered after a crash between its PUT and its UPSERT, or superseded by recrawls of all
  its pages. ``--repair`` (and the writer's periodic :func:`collect_garbage`) deletes those
  **older than the grace period** (``StorageSettings.gc_grace_s``) only.

Why the grace period makes deletion safe while writers run: a writer PUTs an object under a
key nobody has used before, then UPSERTs the rows that point at it. Before that UPSERT it
checks that the PUT finished less than half the grace period ago and writes the objects
again otherwise (PageStore._write). So an object that is older than the grace period and
unreferenced now can never become referenced later, whatever the order in which the listing
and the walk happened. An object partly referenced (some of its pages recrawled since) is kept
whole.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import asyncpg

from workers.storage.objects import CONTENT_PREFIXES, BlobStore, ObjectInfo
from workers.storage.pages import pg_errors

__all__ = ["GC_LOCK_KEY", "FsckReport", "MissingContent", "check", "collect_garbage", "repair"]

log = logging.getLogger(__name__)

GC_LOCK_KEY = 0x5C_57_0A_6F
"""Advisory lock held by the one process collecting garbage at a time."""

# For a WARC row every part lies inside its page's run: the run's end is what the object needs.
_REFS_SQL = (
    "SELECT url_hash, url, ARRAY[html_key, markdown_key, rendered_key, text_key, warc_key] AS keys,"
    " COALESCE(warc_offset + warc_length, 0) AS needed FROM pages"
)


@dataclass(frozen=True, slots=True)
class MissingContent:
    url_hash: str
    url: str
    key: str
    needed: int
    """Bytes the row needs the object to have (0: any size)."""
    size: int | None
    """The object's size, None when it does not exist."""

    @property
    def why(self) -> str:
        if self.size is None:
            return "object missing"
        return f"object has {self.size} bytes, the row needs {self.needed}"


@dataclass(slots=True)
class FsckReport:
    rows: int = 0
    objects: int = 0
    object_bytes: int = 0
    missing: list[MissingContent] = field(default_factory=list)
    """Rows whose content object is gone or too short."""
    orphans: list[ObjectInfo] = field(default_factory=list)
    """Objects no row points at, older than the grace period (deletable)."""
    young_orphans: list[ObjectInfo] = field(default_factory=list)
    """Objects no row points at yet, younger than the grace period (kept: a writer may be
    about to reference them)."""
    deleted_objects: list[str] = field(default_factory=list)
    deleted_rows: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.missing and not self.orphans


async def _list_content(blobs: BlobStore) -> dict[str, ObjectInfo]:
    found: dict[str, ObjectInfo] = {}
    for prefix in CONTENT_PREFIXES:
        for info in await blobs.list_objects(prefix):
            found[info.key] = info
    return found


async def check(
    pool: asyncpg.Pool, blobs: BlobStore, *, grace_s: float, now: float | None = None
) -> FsckReport:
    """Compare every row with the object listing (read only)."""
    now = time.time() if now is None else now
    objects = await _list_content(blobs)
    report = FsckReport(objects=len(objects), object_bytes=sum(o.size for o in objects.values()))
    referenced: set[str] = set()
    with pg_errors("fsck"):
        async with pool.acquire() as conn, conn.transaction(readonly=True):
            async for r in conn.cursor(_REFS_SQL, prefetch=2000):
                report.rows += 1
                keys = [k for k in r["keys"] if k is not None]
                referenced.update(keys)
                gone = next((k for k in keys if k not in objects), None)
                warc_key = r["keys"][4]
                if gone is not None:
                    report.missing.append(MissingContent(r["url_hash"], r["url"], gone, 0, None))
                elif warc_key is not None and r["needed"] > objects[warc_key].size:
                    size = objects[warc_key].size
                    report.missing.append(
                        MissingContent(r["url_hash"], r["url"], warc_key, r["needed"], size)
                    )
    for key, info in sorted(objects.items()):
        if key in referenced:
            continue
        (report.orphans if now - info.modified > grace_s else report.young_orphans).append(info)
    return report


async def repair(pool: asyncpg.Pool, blobs: BlobStore, report: FsckReport) -> FsckReport:
    """Delete what ``report`` found: old orphan objects, and rows whose object is confirmed
    gone (a second look at each object, so a listing hiccup can never delete rows)."""
    keys = [o.key for o in report.orphans]
    if keys:
        await blobs.delete_many(keys)
        report.deleted_objects = keys
    lost = []
    for m in report.missing:
        info = await blobs.stat(m.key)
        if info is None or info.size < m.needed:
            lost.append(m.url_hash)
    if lost:
        with pg_errors("fsck repair"):
            rows = await pool.fetch(
                "DELETE FROM pages WHERE url_hash = ANY($1::text[]) RETURNING url_hash", lost
            )
        report.deleted_rows = [r["url_hash"] for r in rows]
    return report


async def collect_garbage(pool: asyncpg.Pool, blobs: BlobStore, *, grace_s: float) -> list[str] | None:
    """Delete unreferenced content objects older than ``grace_s``; None when another process
    holds the collector's lock. Rows are never touched here."""
    with pg_errors("garbage collection"):
        async with pool.acquire() as conn:
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", GC_LOCK_KEY):
                return None
            try:
                report = await check(pool, blobs, grace_s=grace_s)
                keys = [o.key for o in report.orphans]
                if keys:
                    await blobs.delete_many(keys)
                    size = sum(o.size for o in report.orphans)
                    log.info(
                        "garbage collection: deleted %d unreferenced objects (%d bytes)", len(keys), size
                    )
                return keys
            finally:
                await conn.execute("SELECT pg_advisory_unlock($1)", GC_LOCK_KEY)
