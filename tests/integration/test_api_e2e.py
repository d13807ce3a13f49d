"""The API against the running pipeline: a crawl submitted with POST /crawls completes, and
what it stored is searchable and readable through the API.

Real daemons as subprocesses (ingestor, router, fast extractor, storage writer, discovery),
the API as its own process (``python -m workers.api``), the demo web on 127.0.0.1, the
session's PostgreSQL, S3 and Kafka (a database of this test's own).
"""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.helpers.api import ApiProcess, auth, fresh_database, make_key
from tests.helpers.ledger import ledger_states
from tests.helpers.pipeline import HOT_PATH, Pipeline
from tests.integration.test_pipeline_e2e import TIMEOUT_ENV
from workers.demoweb import DemoWeb, demo_urls
from workers.ledger import read_progress
from workers.settings import Settings
from workers.storage import PageStore
from workers.urls import normalize_url

pytestmark = pytest.mark.integration

_WORD = re.compile(r"[A-Za-z]{9,}")


async def _wait_complete(client: httpx.AsyncClient, path: str, key: str, timeout_s: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        body: dict[str, Any] = (await client.get(path, headers=auth(key))).json()
        if body.get("status") == "complete" or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.5)


async def _fill_text(store: PageStore, hashes: list[str]) -> None:
    """The storage writer on this branch writes no plain text yet: put the stored Markdown in
    ``pages.text`` where it is empty, as the storage writer will with ProcessedPage.text."""
    for h in hashes:
        text = await store.get_markdown(h)
        await store.pool.execute("UPDATE pages SET text = $2 WHERE url_hash = $1 AND text IS NULL", h, text)


async def test_a_crawl_submitted_through_the_api_completes_and_is_searchable(
    settings: Settings, demo_web: DemoWeb, tmp_path: Path
) -> None:
    urls = demo_urls(
        port=demo_web.port, hosts=2, per_host=6, seed=3, exclude_kinds={"spa"}, timeout_delay_s=6
    )
    async with fresh_database(settings.postgres, prefix="api_e2e") as pg:
        local = settings.model_copy(update={"postgres": pg})
        write, read = await make_key(pg, "write"), await make_key(pg, "read")
        pipeline = Pipeline(local, log_dir=tmp_path / "logs", extra_env=TIMEOUT_ENV)
        api = ApiProcess(local, log_path=tmp_path / "logs" / "api.log")
        pipeline.start(*HOT_PATH)
        api.start()
        try:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as client:
                submitted = await client.post(
                    "/crawls", json={"urls": [u.url for u in urls], "batch": "api-e2e"}, headers=auth(write)
                )
                assert submitted.status_code == 201, submitted.text
                progress = await _wait_complete(client, submitted.json()["progress"], read, timeout_s=180)
                logs = {stage: pipeline.logs(stage) for stage in HOT_PATH}
                assert progress["status"] == "complete", (progress, logs)
                await _check(client, local, read, urls, progress)
        finally:
            pipeline.stop()
            api.stop()
        assert "sck_" not in api.logs()  # no key material in the access log


async def _check(
    client: httpx.AsyncClient, settings: Settings, read: str, urls: list[Any], progress: dict[str, Any]
) -> None:
    # The batch's progress is the CLI's model, read from the same ledger.
    conn = await asyncpg.connect(settings.postgres.dsn())
    try:
        ledger = await read_progress(conn, "api-e2e")
    finally:
        await conn.close()
    assert ledger is not None and ledger.origin == "api"
    assert {k: progress[k] for k in ledger.summary()} == ledger.summary()
    assert progress["eta_s"] == 0.0 and progress["requested"] == len(urls)

    states = await ledger_states(settings, "api-e2e")
    stored = sorted(h for h, r in states.items() if r["state"] == "stored")
    dead = {r["url"] for r in states.values() if r["state"] == "dead"}
    assert stored, states
    assert len(dead) == progress["dead_lettered"] >= 1  # the list has redirect loops and a stalling page
    async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
        await _fill_text(store, stored)
        await store.index_search()
        # Every stored page is in the batch's listing; content is the stored bytes.
        listed: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {"batch": "api-e2e", "limit": 5, **({"cursor": cursor} if cursor else {})}
            body = (await client.get("/pages", params=params, headers=auth(read))).json()
            listed += body["items"]
            if not (cursor := body["next_cursor"]):
                break
        assert sorted(h["url_hash"] for h in listed) == stored
        for h in stored:
            row = await store.get_page(h)
            assert row is not None
            path = f"/pages/{h}/content"
            markdown = await client.get(path, headers=auth(read))
            assert markdown.status_code == 200
            assert markdown.content == (await store.get_content(h, "markdown") or b"")
            html = await client.get(path, params={"format": "html"}, headers=auth(read))
            assert html.content == await store.get_content(h, "html")
            # Search finds the page by a word of its text, and the host filter keeps it.
            text = await store.get_markdown(h) or ""
            words = sorted(set(_WORD.findall(text)), key=lambda w: (-len(w), w))
            assert words, text
            found = await client.get(
                "/pages", params={"q": words[0], "host": row.host, "limit": 100}, headers=auth(read)
            )
            assert h in [hit["url_hash"] for hit in found.json()["items"]], (words[0], found.json())
            meta = (await client.get("/pages/by-url", params={"url": row.url}, headers=auth(read))).json()
            assert meta["url_hash"] == h and meta["batches"] == ["api-e2e"]
    # Every URL the ledger counts as dead-lettered is listed with its reason.
    letters: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        params = {"batch": "api-e2e", "limit": 50, **({"cursor": cursor} if cursor else {})}
        body = (await client.get("/dead-letters", params=params, headers=auth(read))).json()
        letters += body["items"]
        if not (cursor := body["next_cursor"]):
            break
    assert {normalize_url(letter["url"]) for letter in letters} >= dead
    assert all(letter["error_class"] and letter["stage"] for letter in letters)
