"""What a ``stored_pages`` partition shows about its crawl batch: counts, reasons, failures, pages.

Counts, reasons, pages/s, duration and the ETA are the ledger's progress model
(:class:`~workers.ledger.BatchProgress`, the one the CLI and the API show). For a complete
batch the metadata also carries a sample of its failed URLs with their error class (the
ledger's rows) and a preview of a few stored pages — title, URL and the first lines of the
text — read through the storage layer (:class:`~workers.storage.PageStore`), one
``preview_<n>`` entry per page (plain text: the UI shows text inline, Markdown behind a button).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
from dagster import MetadataValue
from minio.error import MinioException

from workers.errors import StreamCrawlError
from workers.ledger import BatchProgress
from workers.settings import PostgresSettings, S3Settings, StorageSettings
from workers.storage import PageStore

__all__ = ["BatchDetails", "batch_details", "batch_metadata", "open_store"]

_STORAGE_ERRORS = (StreamCrawlError, OSError, TimeoutError, asyncpg.PostgresError, MinioException)
_FAILED = 10
_PAGES = 3
_PREVIEW_LINES = 3
_MARKUP = re.compile(r"^[#>*\-+\s]+|!?\[([^\]]*)\]\([^)]*\)|[*_`]+")


@dataclass(slots=True)
class BatchDetails:
    """Rows behind the counts: failed URLs (url, error class) and stored pages (url, title, text)."""

    failed: list[tuple[str, str]] = field(default_factory=list)
    pages: list[tuple[str, str, str]] = field(default_factory=list)
    note: str | None = None
    """Why the preview is missing, when it could not be read."""


def _iso(ts: datetime | None) -> str:
    return ts.astimezone(UTC).isoformat(timespec="seconds") if ts is not None else "-"


def _by_reason(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def _first_lines(markdown: str, title: str) -> str:
    """The first lines of a page's text (the title, usually its first heading, left out)."""
    lines = []
    for raw in markdown.splitlines():
        text = " ".join(_MARKUP.sub(lambda m: m.group(1) or "", raw).split())
        if len(text) >= 3 and text != title.strip():
            lines.append(text[:160])
        if len(lines) >= _PREVIEW_LINES:
            break
    return " / ".join(lines)


def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def batch_metadata(p: BatchProgress, details: BatchDetails | None = None) -> dict[str, Any]:
    """Materialisation / observation metadata of ``p``'s partition."""
    meta: dict[str, Any] = {
        "status": "complete" if p.complete else "in progress",
        "batch": p.batch,
        "requested": p.requested,
        "discovered": p.discovered,
        "stored": p.stored,
        "unchanged": p.unchanged,
        "skipped": p.skipped,
        "dead_lettered": p.dead_lettered,
        "in_flight": p.in_flight,
        "dlq_rate": round(p.dlq_rate, 4),
        "pages_per_s": round(p.pages_per_s, 2),
        "published_at": _iso(p.published_at),
        "duration_s": round(p.duration_s or 0.0, 1),
    }
    if not p.complete:
        meta["eta"] = p.eta().describe()
    if p.skipped_by_reason:
        meta["skipped_by_reason"] = _by_reason(p.skipped_by_reason)
    if p.dead_by_reason:
        meta["dead_by_reason"] = _by_reason(p.dead_by_reason)
        rows = ["| error class | URLs | example |", "|---|---:|---|"]
        rows += [
            f"| {reason} | {n} | {_md_cell(p.examples.get(f'dead:{reason}', '-'))} |"
            for reason, n in sorted(p.dead_by_reason.items(), key=lambda kv: -kv[1])
        ]
        meta["dlq_breakdown"] = MetadataValue.md("\n".join(rows))
    if p.dropped_by_reason:
        meta["links_not_followed"] = _by_reason(p.dropped_by_reason)
    if details is not None:
        # Plain text, not Markdown: the UI shows text inline, Markdown only behind a button.
        if details.failed:
            meta["failed_sample"] = MetadataValue.text(
                "\n".join(f"{url}  ({why})" for url, why in details.failed)
            )
        for n, (url, title, text) in enumerate(details.pages, start=1):
            meta[f"preview_{n}"] = MetadataValue.text(
                f"{title or '(no title)'} — {url} — {text or '(no text)'}"
            )
        if not details.pages and details.note:
            meta["preview_1"] = details.note
    return meta


async def batch_details(conn: asyncpg.Connection, batch: str, store: PageStore | None) -> BatchDetails:
    """A few failed URLs from the ledger and a preview of a few stored pages from ``store``."""
    out = BatchDetails()
    rows = await conn.fetch(
        "SELECT url, reason FROM crawl_urls WHERE batch = $1 AND state = 'dead' AND kind = 'page' LIMIT $2",
        batch,
        _FAILED,
    )
    out.failed = [(r["url"], r["reason"] or "unknown") for r in rows]
    hashes = await conn.fetch(
        "SELECT url_hash FROM crawl_urls WHERE batch = $1 AND state = 'stored' AND kind = 'page'"
        " ORDER BY url_hash LIMIT $2",  # the primary key's order: an index scan that stops early
        batch,
        _PAGES,
    )
    if not hashes:
        return out
    if store is None:
        out.note = "preview unavailable: the page store could not be opened"
        return out
    try:
        for r in hashes:
            page = await store.get_page(r["url_hash"])
            if page is None:
                continue
            markdown = await store.get_markdown(r["url_hash"]) or ""
            out.pages.append((page.url, page.title or "", _first_lines(markdown, page.title or "")))
    except _STORAGE_ERRORS as exc:  # the preview is a nicety: a storage hiccup must not fail the tick
        out.note = f"preview unavailable: {type(exc).__name__}: {exc}"
    return out


@contextlib.asynccontextmanager
async def open_store(
    pg: PostgresSettings, s3: S3Settings, storage: StorageSettings
) -> AsyncIterator[PageStore | None]:
    """The page store for previews, or None when it cannot be opened (the counts still go out)."""
    store = PageStore(pg, s3, storage)
    try:
        await store.start()
    except _STORAGE_ERRORS:  # the tick reports without a preview
        yield None
        return
    try:
        yield store
    finally:
        await store.close()
