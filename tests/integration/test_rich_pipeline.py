"""The rich path inside the pipeline: router → rich renderer → storage, on real services.

Every TodoMVC app labelled ``csr`` in ../shared/data/spa/manifest.json is crawled through
all five daemons; its after-JavaScript strings must be in the stored Markdown. A static
page forced through the renderer must come out with the fast path's text.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bench.offline import fetched_page
from bench.quality import text_f1
from tests.helpers.kafka import produce
from tests.helpers.ledger import crawl_batch
from tests.helpers.pipeline import Pipeline
from tests.integration.test_pipeline_e2e import TIMEOUT_ENV
from workers.demoweb import DemoWeb, data_urls
from workers.demoweb.data import locate_data_dir
from workers.dlq import read_dead_letters
from workers.ingestor import Fetcher
from workers.messages import CrawlRequest, DeadLetter, RawPage, RoutedPage, encode
from workers.settings import IngestorSettings, Settings
from workers.storage import PageStore
from workers.topics import PROCESS_RICH, PROCESSED_DLQ
from workers.urls import host_of, normalize_url, url_hash

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which("chromium"), reason="Debian chromium not installed (make test installs it)"
    ),
]
STAGES = ("ingestor", "router", "fast_extractor", "rich_renderer", "storage_writer", "discovery")


def _csr_apps() -> dict[str, list[str]]:
    """TodoMVC apps labelled ``csr`` -> their expect_after_js strings."""
    data = locate_data_dir()
    assert data is not None, "../shared/data is needed"
    manifest = json.loads((data / "spa" / "manifest.json").read_text())
    apps: dict[str, list[str]] = {}
    for section in manifest.values():
        if not isinstance(section, dict):
            continue
        for path, info in section.items():
            if path.startswith("examples/") and isinstance(info, dict) and info.get("label") == "csr":
                apps[path.split("/")[1]] = list(info["expect_after_js"])
    return apps


async def _fetched(url: str, *, batch: str) -> RawPage:
    """``url`` fetched as the ingestor fetches it (the renderer never fetches a document)."""
    ingestor = IngestorSettings(allow_private_networks=True, resolve_overrides={"*.demo.test": "127.0.0.1"})
    async with Fetcher(ingestor, max_page_bytes=5 * 2**20) as fetcher:
        request = CrawlRequest(url=url, url_hash=url_hash(url), host=host_of(url), requested_at=time.time())
        page = await fetcher.fetch(request)
    return dataclasses.replace(page, batch=batch)


def _routed_rich(url: str, html: bytes, *, batch: str, rule: str) -> RoutedPage:
    """A page the router sent to the renderer, as it travels on process.rich."""
    raw = dataclasses.replace(fetched_page(url, html, charset=None), batch=batch)
    return RoutedPage(page=raw, route="rich", score=0, rules=[rule])


@pytest.fixture
async def pipeline(settings: Settings, tmp_path: Path) -> AsyncIterator[Pipeline]:
    env = {**TIMEOUT_ENV, "STREAMCRAWL_RENDERER_PAGE_TIMEOUT_S": "10"}
    running = Pipeline(settings, log_dir=tmp_path / "logs", extra_env=env)
    running.start(*STAGES)
    try:
        yield running
    finally:
        running.stop()


async def test_client_rendered_apps_reach_storage_with_their_text(
    settings: Settings, pipeline: Pipeline
) -> None:
    web = DemoWeb(port=0, processes=1)
    await web.start()
    try:
        apps = _csr_apps()
        assert len(apps) >= 6
        urls = [u.url for u in data_urls(port=web.port) if any(f"/{name}/" in u.url for name in apps)]
        urls = [u for u in urls if "spa.demo.test" in u]
        assert len(urls) == len(apps)
        batch = f"rich-{time.time_ns()}"
        progress = await crawl_batch(settings, urls, batch, timeout_s=240)
        summary = progress.summary()
        logs = {s: pipeline.logs(s) for s in STAGES}
        assert summary["stored"] == len(urls), (summary, progress.examples, logs["rich_renderer"])
        assert summary["rich"] == len(urls), "every csr app is routed to the renderer"
        async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
            for url in urls:
                h = url_hash(normalize_url(url))
                row = await store.get_page(h)
                assert row is not None and row.route == "rich", url
                markdown = await store.get_markdown(h) or ""
                app = url.rstrip("/").rsplit("/", 1)[-1]
                for expected in apps[app]:
                    # Case-insensitive: the manifest's strings were checked against the DOM
                    # dump (markup included); Angular's heading text itself is "Todos".
                    assert expected.lower() in markdown.lower(), (app, expected, markdown[:500])
    finally:
        await web.stop()


async def test_static_page_through_the_renderer_matches_the_fast_path(
    settings: Settings, pipeline: Pipeline
) -> None:
    web = DemoWeb(port=0, processes=1)
    await web.start()
    try:
        url = next(u.url for u in data_urls(port=web.port) if "readability.demo.test" in u.url)
        batch = f"static-{time.time_ns()}"
        progress = await crawl_batch(settings, [url], batch, timeout_s=120)
        assert progress.summary()["stored"] == 1
        # The same page forced onto the rich path, under its own URL (the query is ignored by the server).
        forced = normalize_url(url + "?via=rich")
        fetched = await _fetched(forced, batch=batch)
        routed = RoutedPage(page=fetched, route="rich", score=0, rules=["forced"])
        await produce(settings.kafka, PROCESS_RICH, [encode(routed)], key=b"readability.demo.test")
        async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
            deadline = time.monotonic() + 90
            row = None
            while time.monotonic() < deadline and row is None:
                row = await store.get_page(url_hash(forced))
                if row is None:
                    await asyncio.sleep(0.5)
            assert row is not None, pipeline.logs("rich_renderer")
            assert row.route == "rich" and not row.fallback
            fast = await store.get_markdown(url_hash(normalize_url(url))) or ""
            rich = await store.get_markdown(url_hash(forced)) or ""
        assert text_f1(fast, rich) >= 0.9, (len(fast), len(rich))
    finally:
        await web.stop()


async def test_page_that_never_loads_is_dead_lettered_and_the_renderer_keeps_serving(
    settings: Settings, pipeline: Pipeline
) -> None:
    web = DemoWeb(port=0, processes=1)
    await web.start()
    try:
        stall = normalize_url(f"http://site-003.demo.test:{web.port}/stall/7")
        ok = normalize_url(f"http://site-003.demo.test:{web.port}/app/2")
        batch = f"stall-{time.time_ns()}"
        # An empty shell whose script never finishes arriving (the document itself comes from
        # the RawPage): it never parses, and the raw-HTML fallback has nothing usable.
        shell = f'<html><body><div id="root"></div><script src="{stall}"></script></body></html>'.encode()
        messages = [
            encode(_routed_rich(stall, shell, batch=batch, rule="empty_root")),
            encode(
                RoutedPage(page=await _fetched(ok, batch=batch), route="rich", score=0, rules=["empty_root"])
            ),
        ]
        started = time.monotonic()
        await produce(settings.kafka, PROCESS_RICH, messages, key=b"site-003.demo.test")
        letters: list[DeadLetter] = []
        async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
            row = None
            while time.monotonic() - started < 90 and (row is None or not letters):
                row = row or await store.get_page(url_hash(ok))
                letters = [
                    letter
                    for _record, letter in await read_dead_letters(settings.kafka, PROCESSED_DLQ, limit=1000)
                    if letter.url_hash == url_hash(stall)
                ]
                await asyncio.sleep(0.5)
        logs = pipeline.logs("rich_renderer")
        assert letters, ("the stalled page is dead-lettered", logs)
        # The render timed out and the raw HTML had no usable text for the fallback.
        assert letters[0].error_class == "ExtractionError", letters[0]
        assert "RenderTimeout" in letters[0].error_message, letters[0].error_message
        assert row is not None and row.route == "rich", ("the renderer kept serving", logs)
        assert pipeline.alive("rich_renderer")
    finally:
        await web.stop()
