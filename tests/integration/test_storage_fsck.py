"""fsck and garbage collection on real PostgreSQL + SeaweedFS, and the CLI around them."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import duckdb
import pytest
from warcio.archiveiterator import ArchiveIterator

from tests.integration.test_storage_store import fresh_database, list_keys, make_page, storage
from workers.settings import PostgresSettings, S3Settings, Settings
from workers.stack.environment import settings_env
from workers.storage import PageStore
from workers.storage.objects import Blob

pytestmark = pytest.mark.integration


@pytest.fixture
async def database(postgres_service: PostgresSettings) -> AsyncIterator[PostgresSettings]:
    async with fresh_database(postgres_service) as db:
        yield db


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def bucket(s3_service: S3Settings) -> S3Settings:
    """A bucket of its own: fsck looks at every content object in it."""
    return s3_service.model_copy(update={"bucket": f"fsck-{uuid.uuid4().hex[:10]}"})


async def test_fsck_finds_planted_orphans_and_repair_removes_exactly_them(
    database: PostgresSettings, bucket: S3Settings
) -> None:
    tag = uuid.uuid4().hex[:8]
    async with PageStore(database, bucket, storage()) as store:
        await store.save_batch([make_page(tag, n) for n in range(3)])
        lost = make_page(tag, 5)
        await store.save_batch([lost])
        report = await store.fsck(grace_s=0)
        assert report.clean and report.rows == 4 and report.objects == 2
        # Plant: an object no row references (a crash between PUT and UPSERT), and a row whose
        # object is gone.
        await store.blobs.put_many([Blob("warc/2020/01/01/20200101000000-orphan.warc.gz", b"x" * 10, "x")])
        row = await store.get_page(lost.url_hash)
        assert row is not None and row.refs.warc is not None
        await store.blobs.delete_many([row.refs.warc.key])

        young = await store.fsck()  # default grace (1 h): the fresh orphan is only listed
        assert [m.url_hash for m in young.missing] == [lost.url_hash] and young.orphans == []
        assert [o.key for o in young.young_orphans] == ["warc/2020/01/01/20200101000000-orphan.warc.gz"]

        report = await store.fsck(grace_s=0, repair=True)
        assert report.deleted_objects == ["warc/2020/01/01/20200101000000-orphan.warc.gz"]
        assert report.deleted_rows == [lost.url_hash]
        assert (await store.fsck(grace_s=0)).clean
        assert await store.count_pages() == 3
        for n in range(3):
            assert await store.get_markdown(make_page(tag, n).url_hash) is not None


async def test_superseded_objects_are_collected_and_young_ones_kept(
    database: PostgresSettings, bucket: S3Settings
) -> None:
    p = make_page(uuid.uuid4().hex[:8], 1)
    async with PageStore(database, bucket, storage()) as store:
        await store.save_batch([p])
        (old_key,) = list_keys(bucket, "warc/")
        await store.save_batch([dataclasses.replace(p, fetched_at=p.fetched_at + 5, markdown="# v2")])
        assert len(list_keys(bucket, "warc/")) == 2
        assert await store.collect_garbage() == []  # superseded, but younger than the grace period
        report = await store.fsck(grace_s=0)
        assert [o.key for o in report.orphans] == [old_key] and not report.missing
        await store.fsck(grace_s=0, repair=True)
        assert old_key not in list_keys(bucket, "warc/") and await store.get_markdown(p.url_hash) == "# v2"


def _cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings), "STREAMCRAWL_METRICS_ENABLED": "false"}
    return subprocess.run(
        [sys.executable, "-m", "workers.cli.main", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


async def test_export_and_fsck_from_the_cli(
    database: PostgresSettings, bucket: S3Settings, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    pages = [make_page(tag, n, language="de" if n % 2 else "en") for n in range(5)]
    async with PageStore(database, bucket, storage()) as store:
        await store.save_batch(pages)
    cli_settings = Settings(postgres=database, s3=bucket)

    out = tmp_path / "corpus.parquet"
    done = _cli(cli_settings, "export", "--format", "parquet", "--batch", f"batch-{tag}", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "exported 5 pages" in done.stderr
    rows = duckdb.sql(
        f"SELECT url, content_languages, fetch_status, warc_filename FROM '{out}' ORDER BY url"
    ).fetchall()
    assert [r[0] for r in rows] == sorted(p.url for p in pages)
    assert {r[1] for r in rows} == {"en", "de"} and {r[2] for r in rows} == {200}

    warc = tmp_path / "corpus.warc.gz"
    assert _cli(cli_settings, "export", "--format", "warc", "-o", str(warc)).returncode == 0
    with warc.open("rb") as f:
        kinds = [r.rec_type for r in ArchiveIterator(f, check_digests="raise")]
    assert kinds[0] == "warcinfo" and kinds.count("response") == 5

    jsonl = _cli(cli_settings, "export", "--dedup")
    assert jsonl.returncode == 0, jsonl.stderr
    lines = [json.loads(x) for x in jsonl.stdout.splitlines()]
    assert len(lines) == 5 and {"fetch_status", "content_type", "text", "language"} <= set(lines[0])

    # One-line errors that say what to fix.
    for args, needle in (
        (("export", "--batch", "no-such-batch"), "no stored pages in batch 'no-such-batch'"),
        (("export", "--format", "parquet", "-o", "/nonexistent-dir/x.parquet"), "does not exist"),
        (("export", "--format", "warc"), "give its path with -o"),
    ):
        bad = _cli(cli_settings, *args)
        assert bad.returncode == 1 and needle in bad.stderr, bad.stderr
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr
    down = cli_settings.model_copy(update={"postgres": database.model_copy(update={"port": 1})})
    bad = _cli(down, "export")
    assert (
        bad.returncode == 1 and "is the stack up?" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    )

    ok = _cli(cli_settings, "fsck")
    assert ok.returncode == 0 and "rows without objects: 0" in ok.stdout, ok.stdout + ok.stderr


def _export_into_head(settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **settings_env(settings), "STREAMCRAWL_METRICS_ENABLED": "false"}
    return subprocess.run(
        f"set -o pipefail; {sys.executable} -m workers.cli.main export | head -1",
        shell=True,
        executable="/bin/bash",
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,  # the failure this guards against was a hang
    )


async def test_export_into_a_pipe_that_closes_early_ends_quietly(
    database: PostgresSettings, bucket: S3Settings
) -> None:
    """`export | head -1`: more output than a pipe holds, the reader leaves after one line."""
    async with PageStore(database, bucket, storage()) as store:
        await store.save_batch([make_page("pipe", n) for n in range(200)])
    piped = _export_into_head(Settings(postgres=database, s3=bucket))
    assert piped.returncode == 0, piped.stderr
    assert json.loads(piped.stdout)["url"].startswith("https://") and piped.stderr == ""
