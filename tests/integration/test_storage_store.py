"""PageStore against the real PostgreSQL and SeaweedFS started by the session fixtures."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import io
import socket
import time
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from minio import Minio
from warcio.archiveiterator import ArchiveIterator

from workers.errors import ConfigError, DependencyUnavailable, RecordRejected
from workers.messages import ProcessedPage, compress_html
from workers.settings import PostgresSettings, S3Settings, StorageSettings
from workers.storage import PageStore
from workers.storage.migrate import Migration, apply_migrations, load_migrations
from workers.storage.objects import Blob, digest, page_keys
from workers.urls import url_hash

pytestmark = pytest.mark.integration

SENTENCE = (
    "the storage writer keeps every page as a warc record in packed objects while postgresql "
    "holds one row per url with the byte ranges a reader needs to fetch any part again later"
)


@contextlib.asynccontextmanager
async def fresh_database(postgres_service: PostgresSettings) -> AsyncIterator[PostgresSettings]:
    """A new, empty database on the session's server, dropped afterwards."""
    name = f"storage_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(postgres_service.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield postgres_service.model_copy(update={"database": name})
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database(postgres_service: PostgresSettings) -> AsyncIterator[PostgresSettings]:
    async with fresh_database(postgres_service) as db:
        yield db


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
    text = f"Body of page {n} ünïcode " + " ".join([SENTENCE] * 2)  # > 50 words: near-duplicate checks apply
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
        markdown=f"# Title {n}\n\n{text}",
        text=text,
        title=f"Title {n}",
        description="desc",
        lang="en",
        language="en",
        language_score=0.9,
        outlinks=[f"https://out.test/{n}/{i}" for i in range(5)],
        outlinks_nofollow=[f"https://out.test/{n}/0"],
        word_count=len(text.split()),
        text_hash=f"{n:032x}",
        simhash=int(url_hash(url)[:16], 16),  # unrelated pages: unrelated SimHashes
        rules=["article", "long_text"],
        batch=f"batch-{tag}",
        rank=n + 1,
        response_headers=[["Content-Type", "text/html"], ["ETag", f'"e{n}"']],
        request_headers=[["Host", f"host{n % 4}.test"]],
        content_type="text/html",
        quality={"text_ratio": 0.5},
        quality_flags=["thin"] if n == 0 else [],
        robots=["nofollow"] if n == 1 else [],
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def storage(**changes: object) -> StorageSettings:
    return StorageSettings(s3_parallelism=8, **changes)  # type: ignore[arg-type]


async def test_batch_is_stored_as_warc_and_every_part_is_readable(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    pages = [make_page(tag, n) for n in range(4)]
    pages[1] = dataclasses.replace(pages[1], rendered_html_zstd=compress_html(b"<html>rendered</html>"))
    async with PageStore(database, s3_service, storage()) as store:
        stored = await store.save_batch(pages)
        assert [s.url_hash for s in stored] == [p.url_hash for p in pages]
        assert {s.outcome for s in stored} == {"stored"} and store.puts == 1  # one object for the batch
        assert stored[1].robots == ["nofollow"] and stored[1].outlinks == pages[1].outlinks
        assert stored[1].outlinks_nofollow == pages[1].outlinks_nofollow and stored[1].host == pages[1].host
        assert stored[1].rendered_key is not None and stored[0].rendered_key is None

        row = await store.get_page(pages[0].url_hash)
        assert row is not None and row.refs.warc is not None
        assert (row.url, row.final_url, row.title, row.language, row.score) == (
            pages[0].url,
            pages[0].final_url,
            "Title 0",
            "en",
            90,
        )
        assert row.outlinks == pages[0].outlinks and row.outlink_count == 5 and row.quality_flags == ["thin"]
        assert row.etag == '"e0"' and row.content_type == "text/html" and row.mime_detected == "text/html"
        assert row.captured_at == row.fetched_at and row.duplicate_of is None
        assert await store.get_content(pages[0].url_hash, "html") == (
            b"<html><head><title>t0</title></head><body>0</body></html>"
        )
        assert await store.get_markdown(pages[0].url_hash) == pages[0].markdown
        assert await store.get_content(pages[0].url_hash, "text") == pages[0].text.encode()
        assert await store.get_content(pages[1].url_hash, "rendered") == b"<html>rendered</html>"
        assert await store.get_content(pages[0].url_hash, "rendered") is None
        run = await store.get_content(pages[0].url_hash, "warc")
        assert run is not None
        kinds = [r.rec_type for r in ArchiveIterator(io.BytesIO(run), check_digests="raise")]
        assert kinds == ["request", "response", "metadata", "conversion", "conversion"]
        assert await store.get_markdown("f" * 32) is None

        assert await store.count_pages() == 4 and await store.count_pages(batch=f"batch-{tag}") == 4
        assert await store.stored_hashes([pages[2].url_hash, "0" * 32]) == {pages[2].url_hash}
        assert await store.validators([p.url_hash for p in pages[:2]] + ["0" * 32]) == {
            pages[0].url_hash: ('"e0"', None),
            pages[1].url_hash: ('"e1"', None),
        }
        exported = [r async for r in store.iter_corpus()]
        assert sorted(r.url for r in exported) == sorted(p.url for p in pages)
        by_url = {r.url: r.as_json() for r in exported}
        assert (
            by_url[pages[2].url]["markdown"] == pages[2].markdown
            and by_url[pages[2].url]["text"] == pages[2].text
        )
        assert (
            by_url[pages[2].url]["fetch_status"] == 200
            and by_url[pages[2].url]["content_type"] == "text/html"
        )
    assert len(list_keys(s3_service, "warc/")) >= 1 and list_keys(s3_service, "pages/") == []


async def test_skipped_noindex_and_not_modified_pages_write_no_content(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    kept = make_page(tag, 0)
    async with PageStore(database, s3_service, storage()) as store:
        await store.save_batch([kept])
        puts, row = store.puts, await store.get_page(kept.url_hash)
        assert row is not None
        later = kept.fetched_at + 100
        batch = [
            make_page(tag, 1, skipped="non_html", html_zstd=b"", markdown="", text=""),
            make_page(tag, 2, robots=["noindex", "nofollow"]),
            dataclasses.replace(kept, status=304, html_zstd=b"", markdown="", fetched_at=later),
            make_page(tag, 3, status=304, html_zstd=b"", markdown=""),
        ]
        results = await store.save_batch(batch)
        assert [(r.outcome, r.reason) for r in results] == [
            ("skipped", "non_html"),
            ("skipped", "noindex"),
            ("unchanged", None),
            ("skipped", "not_modified"),
        ]
        assert results[1].outlinks == batch[1].outlinks and results[1].robots == ["noindex", "nofollow"]
        assert store.puts == puts and await store.count_pages() == 1
        after = await store.get_page(kept.url_hash)
        assert after is not None and after.fetched_at.timestamp() == pytest.approx(later)
        assert after.captured_at == row.captured_at and after.refs == row.refs  # only the fetch time moved


async def test_redelivery_writes_nothing(database: PostgresSettings, s3_service: S3Settings) -> None:
    tag = uuid.uuid4().hex[:8]
    pages = [make_page(tag, n) for n in range(6)]
    async with PageStore(database, s3_service, storage()) as store:
        first = await store.save_batch(pages)
        puts, before = store.puts, list_keys(s3_service, "warc/")
        row = await store.get_page(pages[0].url_hash)
        again = await store.save_batch(pages)
        await store.save_batch(pages[3:] + pages[:2])  # a different composition
        assert store.puts == puts and list_keys(s3_service, "warc/") == before
        assert await store.count_pages() == 6
        assert [s.html_key for s in again] == [s.html_key for s in first]
        row2 = await store.get_page(pages[0].url_hash)
        assert row is not None and row2 is not None and row2.first_stored_at == row.first_stored_at


async def test_a_stale_redelivery_never_overwrites_newer_content(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    p = make_page(uuid.uuid4().hex[:8], 1)
    newer = dataclasses.replace(p, fetched_at=p.fetched_at + 60, markdown="# Changed", title="New")
    async with PageStore(database, s3_service, storage()) as store:
        await store.save_batch([p])
        (result,) = await store.save_batch([newer])
        new_row = await store.get_page(p.url_hash)
        assert new_row is not None and await store.get_markdown(p.url_hash) == "# Changed"
        # The old version arrives late, alone and mixed into a batch: nothing changes, no PUT.
        puts = store.puts
        (late,) = await store.save_batch([p])
        await store.save_batch([make_page("other", 7), p])
        assert store.puts == puts + 1  # only the other page's object
        assert late.markdown_key == result.markdown_key
        row = await store.get_page(p.url_hash)
        assert row is not None and row.title == "New" and row.refs == new_row.refs
        assert await store.get_markdown(p.url_hash) == "# Changed"
        # The row points at its own range: the old object still holds the old version intact.
        assert row.refs.markdown is not None and row.refs.markdown.digest != digest(p.markdown.encode())


async def test_a_url_repeated_in_one_batch_keeps_the_newest(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    p = make_page(uuid.uuid4().hex[:8], 1)
    newer = dataclasses.replace(p, fetched_at=p.fetched_at + 1, title="Newer")
    async with PageStore(database, s3_service, storage()) as store:
        results = await store.save_batch([newer, p, newer])
        assert len(results) == 3
        row = await store.get_page(p.url_hash)
        assert row is not None and row.title == "Newer"
        assert await store.count_pages() == 1


async def test_exact_and_near_duplicates_are_flagged_in_a_batch_and_against_the_corpus(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    original = make_page(tag, 0, simhash=0x0F0F_0F0F_0F0F_0F0F, text_hash="a" * 32)
    exact = make_page(tag, 1, simhash=0x1234, text_hash="a" * 32)
    near = make_page(tag, 2, simhash=0x0F0F_0F0F_0F0F_0F0F ^ 0b10_1101, text_hash="b" * 32)  # 4 bits off
    far = make_page(tag, 3, simhash=0x0F0F_0F0F_0F0F_0F0F ^ 0xFFFF_0000_00FF, text_hash="c" * 32)
    short = make_page(tag, 4, simhash=0x0F0F_0F0F_0F0F_0F0F, text_hash="d" * 32, word_count=10)
    async with PageStore(database, s3_service, storage()) as store:
        await store.save_batch([original])
        await store.save_batch([exact, near, far, short])
        later_copy = make_page(tag, 5, simhash=0x0F0F_0F0F_0F0F_0F0F ^ 1, text_hash="e" * 32)
        twin_a = make_page(tag, 6, simhash=0x5555, text_hash="f" * 32)
        twin_b = make_page(tag, 7, simhash=0x7777, text_hash="f" * 32)
        await store.save_batch([later_copy, twin_a, twin_b])
        flags = {
            n: (await store.get_page(p.url_hash)).duplicate_of  # type: ignore[union-attr]
            for n, p in enumerate([original, exact, near, far, short, later_copy, twin_a, twin_b])
        }
        assert flags[0] is None and flags[1] == original.url_hash and flags[2] == original.url_hash
        assert flags[3] is None and flags[4] is None  # too far; too short for a near match
        assert flags[5] == original.url_hash  # against the stored corpus, not its own batch's copy
        first = min(twin_a.url_hash, twin_b.url_hash)  # same first_stored_at: url_hash decides
        assert {flags[6], flags[7]} == {None, first}  # within one batch: one original, one copy
        assert await store.count_corpus(dedup=True) == 8 - 4 and await store.count_corpus() == 8


async def test_a_bad_record_fails_the_batch_before_any_write_and_save_one_isolates_it(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    good = [make_page(tag, n) for n in range(3)]
    bad = dataclasses.replace(good[0], url_hash="not-a-hash")
    corrupt = make_page(tag, 8, html_zstd=b"\x28\xb5\x2f\xfd not zstd")
    async with PageStore(database, s3_service, storage()) as store:
        with pytest.raises(RecordRejected):
            await store.save_batch([*good, bad])
        assert await store.count_pages() == 0 and store.puts == 0
        with pytest.raises(RecordRejected):
            await store.save_batch([*good, corrupt])
        outcomes: list[str] = []
        for page in [*good, bad, corrupt]:
            try:
                await store.save_one(page)
                outcomes.append("stored")
            except RecordRejected:
                outcomes.append("rejected")
        assert outcomes == ["stored", "stored", "stored", "rejected", "rejected"]
        # Text PostgreSQL cannot hold is cleaned, not rejected.
        await store.save_one(make_page(tag, 9, title="nul\x00byte", outlinks=["https://x.test/\x00"]))
        assert await store.count_pages() == 4


async def test_rows_of_the_first_build_stay_readable(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    """A row in the first build's page layout (zstd HTML + Markdown objects per URL)."""
    async with PageStore(database, s3_service, storage()) as store:
        h = url_hash("https://legacy.test/old")
        keys = page_keys(h)
        html = b"<html><body>old layout</body></html>"
        await store.blobs.put_many(
            [
                Blob(keys.html, compress_html(html), "application/zstd"),
                Blob(keys.markdown, b"# Old", "text/markdown"),
            ]
        )
        await store.pool.execute(
            "INSERT INTO pages (url_hash, url, host, final_url, status, route, score, content_hash, "
            "html_key, html_digest, markdown_key, markdown_digest, fetched_at, processed_at, batch) "
            "VALUES ($1, 'https://legacy.test/old', 'legacy.test', 'https://legacy.test/old', 200, 'fast', 1, "
            "'c', $2, 'd', $3, 'd', now(), now(), 'old')",
            h,
            keys.html,
            keys.markdown,
        )
        assert await store.get_markdown(h) == "# Old"
        assert await store.get_content(h, "html") == html
        assert await store.get_content(h, "warc") is None
        (row,) = [r async for r in store.iter_corpus(batch="old", parts=("markdown", "html"))]
        assert row.content == {"markdown": b"# Old", "html": html} and not row.refs.is_warc


async def test_migrations_run_once_even_when_writers_start_together(
    database: PostgresSettings, s3_service: S3Settings
) -> None:
    stores = [PageStore(database, s3_service, storage()) for _ in range(3)]
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
    store = PageStore(PostgresSettings(port=port), s3_service, storage())
    with pytest.raises(DependencyUnavailable):
        await store.start()
    with pytest.raises(DependencyUnavailable):
        await store.save_batch([make_page("x", 1)])
    await store.close()
    with pytest.raises(ConfigError):
        PageStore(PostgresSettings(port=port), s3_service, storage(gc_grace_s=60))
