"""PageStore against the real PostgreSQL and SeaweedFS started by the session fixtures."""

from __future__ import annotations

import asyncio
import dataclasses
import socket
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
import zstandard
from minio import Minio

from workers.errors import ConfigError, DependencyUnavailable, RecordRejected
from workers.messages import ProcessedPage, compress_html
from workers.settings import PostgresSettings, S3Settings, StorageSettings
from workers.storage import PageStore
from workers.storage.migrate import Migration, apply_migrations, load_migrations
from workers.storage.objects import page_keys
from workers.urls import url_hash

pytestmark = pytest.mark.integration

LAYOUTS = ["page", "segment"]


@pytest.fixture
async def database(postgres_service: PostgresSettings) -> AsyncIterator[PostgresSettings]:
    """A fresh database per test, dropped afterwards."""
    name = f"storage_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_service.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_service.model_copy(update={"database": name})
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def _minio(s3: S3Settings) -> Minio:
    return Minio(
        s3.endpoint, access_key=s3.access_key, secret_key=s3.secret_key, secure=s3.secure, region=s3.region
    )


def list_keys(s3: S3Settings, prefix: str) -> list[str]:
    client = _minio(s3)
    if not client.bucket_exists(s3.bucket):
        return []
    return sorted(o.object_name for o in client.list_objects(s3.bucket, prefix=prefix, recursive=True))


def make_page(tag: str, n: int, **changes: object) -> ProcessedPage:
    url = f"https://host{n % 4}.test/{tag}/{n}"
    now = time.time()
    base = ProcessedPage(
        url=url,
        url_hash=url_hash(url),
        host=f"host{n % 4}.test",
        final_url=url + "?final",
        status=200,
        route="fast",
        score=90 + n,
        fetched_at=now,
        processed_at=now,
        content_hash=f"{n:032x}",
        html_zstd=compress_html(f"<html><head><title>t{n}</title></head><body>{n}</body></html>".encode()),
        markdown=f"# Title {n}\n\nBody of page {n}, ünïcode.",
        title=f"Title {n}",
        description="desc",
        lang="en",
        outlinks=[f"https://out.test/{n}/{i}" for i in range(5)],
        word_count=7,
        text_hash="t" * 32,
        simhash=2**64 - 1 - n,
        rules=["article", "long_text"],
        batch=f"batch-{tag}",
        rank=n + 1,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def storage(layout: str) -> StorageSettings:
    return StorageSettings(object_layout=layout, s3_parallelism=8)


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_batch_is_stored_and_readable(
    database: PostgresSettings, s3_service: S3Settings, layout: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    pages = [make_page(tag, n) for n in range(4)]
    pages[1] = dataclasses.replace(pages[1], rendered_html_zstd=compress_html(b"<html>rendered</html>"))
    pages[3] = dataclasses.replace(pages[3], skipped="content-type image/png", html_zstd=b"", markdown="")
    async with PageStore(database, s3_service, storage(layout)) as store:
        stored = await store.save_batch(pages)
        assert [s.url_hash for s in stored] == [p.url_hash for p in pages]
        assert stored[3].html_key is None and stored[3].markdown_key is None
        assert stored[1].rendered_key is not None and stored[0].rendered_key is None
        if layout == "page":
            assert stored[0].html_key == page_keys(pages[0].url_hash).html

        row = await store.get_page(pages[0].url_hash)
        assert row is not None
        assert (row.url, row.final_url, row.title, row.lang, row.score) == (
            pages[0].url,
            pages[0].final_url,
            "Title 0",
            "en",
            90,
        )
        assert row.simhash == 2**64 - 1 and row.outlinks == pages[0].outlinks and row.outlink_count == 5
        assert row.rules == ["article", "long_text"] and row.batch == f"batch-{tag}" and row.rank == 1
        html = await store.read_part(row.refs.html)
        assert html is not None
        assert zstandard.ZstdDecompressor().decompress(html) == zstandard.ZstdDecompressor().decompress(
            pages[0].html_zstd
        )
        assert await store.get_markdown(pages[0].url_hash) == pages[0].markdown
        rendered_row = await store.get_page(pages[1].url_hash)
        assert rendered_row is not None and rendered_row.rendered_key == stored[1].rendered_key
        assert await store.get_markdown(pages[3].url_hash) == ""
        assert await store.get_markdown("f" * 32) is None

        assert await store.count_pages() == 4
        assert await store.count_pages(batch=f"batch-{tag}") == 4
        assert await store.stored_hashes([pages[2].url_hash, "0" * 32]) == {pages[2].url_hash}
        exported = [e async for e in store.iter_pages(chunk_size=3)]
        assert sorted(e.url for e in exported) == sorted(p.url for p in pages)
        by_url = {e.url: e.as_dict() for e in exported}
        assert by_url[pages[2].url]["markdown"] == pages[2].markdown
        assert set(by_url[pages[2].url]) == {
            "url",
            "final_url",
            "title",
            "description",
            "lang",
            "route",
            "score",
            "markdown",
            "fetched_at",
        }


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_redelivery_creates_no_second_row_and_no_second_object(
    database: PostgresSettings, s3_service: S3Settings, layout: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    pages = [make_page(tag, n) for n in range(6)]
    async with PageStore(database, s3_service, storage(layout)) as store:
        first = await store.save_batch(pages)
        puts = store.puts
        before = list_keys(s3_service, "segments/" if layout == "segment" else "pages/")
        row = await store.get_page(pages[0].url_hash)
        # The same records again, and again in a different batch composition.
        again = await store.save_batch(pages)
        await store.save_batch(pages[3:] + pages[:2])
        assert store.puts == puts
        assert list_keys(s3_service, "segments/" if layout == "segment" else "pages/") == before
        assert await store.count_pages() == 6
        assert [s.html_key for s in again] == [s.html_key for s in first]
        row2 = await store.get_page(pages[0].url_hash)
        assert row is not None and row2 is not None and row2.first_stored_at == row.first_stored_at
    if layout == "page":
        for p in pages:
            assert len(list_keys(s3_service, f"pages/{p.url_hash[:2]}/{p.url_hash}/")) == 2


@pytest.mark.parametrize("layout", LAYOUTS)
async def test_a_recrawl_rewrites_only_what_changed(
    database: PostgresSettings, s3_service: S3Settings, layout: str
) -> None:
    p = make_page(uuid.uuid4().hex[:8], 1)
    async with PageStore(database, s3_service, storage(layout)) as store:
        await store.save_batch([p])
        puts = store.puts
        newer = dataclasses.replace(p, fetched_at=p.fetched_at + 60, markdown="# Changed", title="New")
        (result,) = await store.save_batch([newer])
        assert store.puts == puts + 1  # the Markdown only; the HTML bytes are unchanged
        assert await store.get_markdown(p.url_hash) == "# Changed"
        if layout == "page":
            assert result.markdown_key == page_keys(p.url_hash).markdown
            assert len(list_keys(s3_service, f"pages/{p.url_hash[:2]}/{p.url_hash}/")) == 2

        # An older version delivered late never replaces the newer one.
        (late,) = await store.save_batch([dataclasses.replace(p, markdown="# Stale")])
        assert store.puts == puts + 1
        assert late.markdown_key == result.markdown_key
        row = await store.get_page(p.url_hash)
        assert row is not None and row.title == "New"
        assert await store.get_markdown(p.url_hash) == "# Changed"


async def test_a_recrawl_without_content_removes_the_old_objects(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    p = make_page(uuid.uuid4().hex[:8], 1)
    prefix = f"pages/{p.url_hash[:2]}/{p.url_hash}/"
    async with PageStore(database, s3_service, storage("page")) as store:
        await store.save_batch([p])
        assert len(list_keys(s3_service, prefix)) == 2
        gone = dataclasses.replace(
            p, fetched_at=p.fetched_at + 5, skipped="content-type application/pdf", html_zstd=b"", markdown=""
        )
        (result,) = await store.save_batch([gone])
        assert result.html_key is None and result.markdown_key is None
        assert list_keys(s3_service, prefix) == []
        row = await store.get_page(p.url_hash)
        assert row is not None and row.skipped and row.html_key is None


async def test_a_url_repeated_in_one_batch_keeps_the_newest(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    p = make_page(uuid.uuid4().hex[:8], 1)
    newer = dataclasses.replace(p, fetched_at=p.fetched_at + 1, title="Newer")
    async with PageStore(database, s3_service, storage("page")) as store:
        results = await store.save_batch([newer, p, newer])
        assert len(results) == 3
        row = await store.get_page(p.url_hash)
        assert row is not None and row.title == "Newer"
        assert await store.count_pages() == 1


async def test_a_bad_record_fails_the_batch_before_any_write_and_save_one_isolates_it(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    good = [make_page(tag, n) for n in range(3)]
    bad = dataclasses.replace(good[0], url_hash="not-a-hash")
    async with PageStore(database, s3_service, storage("page")) as store:
        with pytest.raises(RecordRejected):
            await store.save_batch([*good, bad])
        assert await store.count_pages() == 0 and store.puts == 0
        outcomes: list[str] = []
        for page in [*good, bad]:
            try:
                await store.save_one(page)
                outcomes.append("stored")
            except RecordRejected:
                outcomes.append("rejected")
        assert outcomes == ["stored", "stored", "stored", "rejected"]
        # Text PostgreSQL cannot hold is cleaned, not rejected.
        await store.save_one(make_page(tag, 9, title="nul\x00byte", outlinks=["https://x.test/\x00"]))
        assert await store.count_pages() == 4


async def test_migrations_run_once_even_when_writers_start_together(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    stores = [PageStore(database, s3_service, storage("page")) for _ in range(3)]
    await asyncio.gather(*(s.start() for s in stores))
    try:
        rows = await stores[0].pool.fetch("SELECT version FROM schema_migrations ORDER BY version")
        assert [r["version"] for r in rows] == [m.version for m in load_migrations()]
        async with stores[0].pool.acquire() as conn:
            assert await apply_migrations(conn) == []
            edited = [dataclasses.replace(m, sql=m.sql + "\n-- edited") for m in load_migrations()]
            with pytest.raises(ConfigError):
                await apply_migrations(conn, migrations=edited)
            extra = Migration(9999, "probe", "CREATE TABLE probe_9999 (x int)")
            assert await apply_migrations(conn, migrations=[*load_migrations(), extra]) == [9999]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


async def test_unreachable_postgresql_is_retryable(s3_service: S3Settings) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store = PageStore(PostgresSettings(port=port), s3_service, storage("page"))
    with pytest.raises(DependencyUnavailable):
        await store.start()
    with pytest.raises(DependencyUnavailable):
        await store.save_batch([make_page("x", 1)])
    await store.close()
