"""Migration 0020's search vector follows the pages the storage writer writes, and only when
their title or text change (a redelivery or a 304 leaves it, and its GIN entries, alone).
Since migration 0022 the writes queue the page and the writer's background indexer builds the
vector (``PageStore.index_search`` builds the queued ones at once)."""

from __future__ import annotations

import dataclasses

import asyncpg
import pytest

from tests.helpers.api import fresh_database, store_pages
from tests.integration.test_api import PAGES
from workers.settings import Settings
from workers.storage import PageStore

pytestmark = pytest.mark.integration


async def _vector(conn: asyncpg.Connection, url_hash: str) -> tuple[str, str] | None:
    row = await conn.fetchrow(
        "SELECT xmin::text, search::text FROM page_search WHERE url_hash = $1", url_hash
    )
    return None if row is None else (row[0], row[1])


async def test_the_search_vector_follows_title_and_text_only(settings: Settings) -> None:
    async with fresh_database(settings.postgres, prefix="search") as pg:
        page = PAGES[3]
        async with PageStore(pg, settings.s3, settings.storage) as store:
            conn = await asyncpg.connect(pg.dsn())
            try:
                await store.save_batch([dataclasses.replace(page, text="")])  # a page without text first
                await store.index_search()
                first = await _vector(conn, page.url_hash)
                assert first is not None and "'page':1A" in first[1] and "wombat" not in first[1]
                await store_pages(store, [page])  # text arrives: the vector is recomputed
                with_text = await _vector(conn, page.url_hash)
                assert with_text is not None and "wombat" in with_text[1]
                await store.save_batch([page])  # a redelivery: the vector row is not rewritten
                assert await store.index_search() == 0
                assert await _vector(conn, page.url_hash) == with_text
                await conn.execute(  # a 304: only fetched_at moves
                    "UPDATE pages SET fetched_at = fetched_at + interval '1 day' WHERE url_hash = $1",
                    page.url_hash,
                )
                assert await store.index_search() == 0
                assert await _vector(conn, page.url_hash) == with_text
                newer = dataclasses.replace(
                    page, title="A heron arrives", fetched_at=page.fetched_at + 86_400 * 2
                )
                await store.save_batch([newer])  # a recrawl with a new title
                await store.index_search()
                recrawled = await _vector(conn, page.url_hash)
                assert recrawled is not None and "'heron':2A" in recrawled[1] and "wombat" in recrawled[1]
                await conn.execute("DELETE FROM pages WHERE url_hash = $1", page.url_hash)
                assert await _vector(conn, page.url_hash) is None
            finally:
                await conn.close()
