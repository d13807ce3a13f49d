"""A sitemap-seeded crawl of a demo host stores exactly the sitemap's in-scope URLs (issue 8).

Real daemons as subprocesses over real services and the demo web. The batch is published
with ``sitemaps``: the ledger adds the host's robots.txt and /sitemap.xml reads; the
ingestor fetches them (``kind`` robots/sitemap, to ``raw.sitemap``, a gzipped child kept
gzipped), discovery reads the ``Sitemap:`` lines, the sitemap index, its plain and gzipped
children and the text sitemap, and admits their in-scope page URLs at depth 0. What a
correct crawl stores comes from the demo site's graph (workers/demoweb/oracle.py), never
from crawling.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.ledger import crawl_batch, ledger_states
from tests.helpers.pipeline import HOT_PATH, Pipeline
from tests.integration.test_pipeline_e2e import TIMEOUT_ENV
from workers.demoweb import DemoWeb, DemoWebConfig, demo_host
from workers.demoweb.accesslog import fetch_counts, wait_for_records
from workers.demoweb.oracle import expect_crawl, sitemap_urls
from workers.messages import Scope
from workers.settings import Settings
from workers.urls import canonicalize, url_hash

pytestmark = pytest.mark.integration


@pytest.fixture
async def demo_web(tmp_path: Path) -> AsyncIterator[DemoWeb]:
    config = DemoWebConfig(access_log_dir=tmp_path / "access")
    async with DemoWeb(port=0, processes=1, config=config) as web:
        yield web


async def test_a_sitemap_seeded_crawl_stores_exactly_the_sitemaps_in_scope_urls(
    settings: Settings, demo_web: DemoWeb, tmp_path: Path
) -> None:
    host = demo_host(5)
    home = canonicalize(f"http://{host}:{demo_web.port}/")
    scope = Scope(mode="host", max_depth=0)
    expected = sitemap_urls(host, port=demo_web.port)
    expectation = expect_crawl([home], scope, sitemaps=True)
    assert expectation.exact and expected == expectation.stored
    assert canonicalize(f"http://{host}:{demo_web.port}/article/1") in expected  # linked from no page
    pipeline = Pipeline(settings, log_dir=tmp_path / "logs", extra_env=TIMEOUT_ENV)
    pipeline.start(*HOT_PATH)
    batch = f"sitemap-{time.time_ns()}"
    started = time.time()
    try:
        progress = await crawl_batch(settings, [home], batch, timeout_s=180, scope=scope, sitemaps=True)
    finally:
        pipeline.stop()
    logs = {stage: pipeline.logs(stage) for stage in HOT_PATH}
    assert progress.complete, (progress.summary(), logs)
    states = await ledger_states(settings, batch)
    pages = {r["url"]: r for r in states.values() if r["kind"] == "page"}
    stored = {url for url, r in pages.items() if r["state"] == "stored"}
    assert stored == expected, (sorted(stored ^ expected), logs["discovery"])
    # Every URL requested is one the oracle expects, with its outcome (noindex, robots skips).
    assert set(pages) == set(expectation.urls), sorted(set(pages) ^ set(expectation.urls))
    for url, row in pages.items():
        want = expectation.urls[url]
        assert (row["state"], row["depth"]) == (_state(want.outcome), 0), (url, dict(row), want)
        if want.outcome == "skipped":
            assert row["reason"] == want.reason, (url, dict(row), want)
    assert states[url_hash(home)]["state"] == "stored"
    # robots.txt, the index, its two children and the text sitemap were each read once, not dead.
    reads = sorted(
        (r["kind"], r["url"].rsplit("/", 1)[-1], r["state"]) for r in states.values() if r["kind"] != "page"
    )
    assert reads == [
        ("robots", "robots.txt", "stored"),
        ("sitemap", "extra.txt", "stored"),
        ("sitemap", "pages.xml.gz", "stored"),
        ("sitemap", "sections.xml", "stored"),
        ("sitemap", "sitemap.xml", "stored"),
    ], reads
    assert progress.stored == len(expected) and progress.dead_lettered == 0
    assert progress.requested == len(expectation.urls)
    # The server saw one GET for each page and each sitemap file (robots.txt aside: the
    # pages' own robots checks share the ingestor's cache with the robots.txt read).
    log_dir = tmp_path / "access"
    records = await wait_for_records(log_dir, at_least=len(pages) + 4, since=started)
    fetches = fetch_counts(records, user_agent=settings.ingestor.robots_token)
    sitemap_files = {r["url"] for r in states.values() if r["kind"] == "sitemap"}
    robots_checked = {u for u, row in pages.items() if row["reason"] == "robots"}  # never fetched
    assert {u: n for u, n in fetches.items() if not u.endswith("/robots.txt")} == dict.fromkeys(
        (set(pages) - robots_checked) | sitemap_files, 1
    )


def _state(outcome: str) -> str:
    return {"dead_lettered": "dead"}.get(outcome, outcome)
