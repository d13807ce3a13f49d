"""The search index is built off the write path (migration 0022, workers/storage/search_index.py):
a write queues the page in its own transaction, the writer's background indexer builds the
vectors shortly after, and queued pages survive a writer that stops before indexing them."""

from __future__ import annotations

import asyncio
import time
import uuid

import asyncpg
import pytest

from tests.integration.test_storage_store import database, make_page, storage
from workers.settings import PostgresSettings, S3Settings
from workers.storage import PageStore
from workers.storage.migrate import apply_migrations
from workers.storage.pages import upsert_pages
from workers.storage.plan import ObjectRefs

pytestmark = pytest.mark.integration
__all__ = ["database"]  # the fixture, imported for its use here


async def _indexed(pg: PostgresSettings, hashes: list[str]) -> tuple[int, int]:
    """(vectors present, still queued) of these pages."""
    conn = await asyncpg.connect(pg.dsn())
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM page_search WHERE url_hash = ANY($1::text[])),"
            " (SELECT count(*) FROM page_search_queue WHERE url_hash = ANY($1::text[]))",
            hashes,
        )
        assert row is not None
        return int(row[0]), int(row[1])
    finally:
        await conn.close()


async def _until_indexed(pg: PostgresSettings, hashes: list[str], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while (state := await _indexed(pg, hashes)) != (len(hashes), 0):
        assert time.monotonic() < deadline, f"not indexed within {timeout_s} s: {state}"
        await asyncio.sleep(0.05)


async def test_the_background_indexer_builds_vectors_after_a_write(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    pages = [make_page(uuid.uuid4().hex[:8], n) for n in range(7)]
    hashes = [p.url_hash for p in pages]
    async with PageStore(database, s3_service, storage(search_index_batch=3)) as store:
        await store.save_batch(pages)
        await _until_indexed(database, hashes)  # three statements of 3, 3 and 1 pages, unasked
        conn = await asyncpg.connect(database.dsn())
        try:
            found = await conn.fetchval(
                "SELECT count(*) FROM page_search WHERE search @@ websearch_to_tsquery('simple', 'body')"
                " AND url_hash = ANY($1::text[])",
                hashes,
            )
        finally:
            await conn.close()
        assert found == len(pages)


async def test_pages_queued_by_a_writer_that_stopped_are_indexed_by_the_next(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    pages = [make_page(uuid.uuid4().hex[:8], n) for n in range(4)]
    hashes = [p.url_hash for p in pages]
    # Rows written by the writer's own statement, with no indexer running: what a writer that
    # crashed right after its UPSERT leaves behind. The rows and their queue entries are in.
    conn = await asyncpg.connect(database.dsn())
    try:
        await apply_migrations(conn)
        await upsert_pages(conn, pages, [ObjectRefs()] * len(pages))
    finally:
        await conn.close()
    assert await _indexed(database, hashes) == (0, len(pages))
    async with PageStore(database, s3_service, storage()):
        await _until_indexed(database, hashes)  # the next start indexes what was queued
