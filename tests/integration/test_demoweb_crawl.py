"""`streamcrawl demo`'s path on real services: publish with a scope, wait, read the stored pages
from PostgreSQL, compare with the oracle, and check the demo server's access log.

Depth 0 only: following links needs the crawl loop's discovery stage (the test of the whole
loop belongs with it). What this proves is the demo's own plumbing: the scope travels with
the requests, ``stored_urls`` reads the batch's stored pages, and the report says 0 lost,
0 unexpected, 0 missing when the pipeline did its job.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.helpers.pipeline import HOT_PATH, Pipeline
from workers.cli import cmd_demo
from workers.demoweb import DemoWeb, DemoWebConfig
from workers.demoweb.accesslog import fetch_counts, wait_for_records
from workers.demoweb.hosts import demo_host
from workers.demoweb.oracle import expect_crawl
from workers.demoweb.report import demo_report
from workers.messages import Scope
from workers.settings import Settings

pytestmark = pytest.mark.integration

ENV = {
    "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": '{"*.demo.test": "127.0.0.1"}',
    "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "true",
    "STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S": "3",
    "STREAMCRAWL_INGESTOR_READ_TIMEOUT_S": "2",
    "STREAMCRAWL_INGESTOR_MAX_RETRIES": "1",
    "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0.05",
    "STREAMCRAWL_INGESTOR_CRAWL_DELAY_CAP_S": "0.2",
    # Failing pages are re-queued once, half a second later (the defaults wait 5 s, doubling,
    # five times); every demo host is 127.0.0.1, so the per-IP cap would serialise them.
    "STREAMCRAWL_INGESTOR_MAX_REQUEUES": "1",
    "STREAMCRAWL_INGESTOR_REQUEUE_BASE_DELAY_S": "0.5",
    "STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY": "64",
}


async def test_a_depth_0_demo_crawl_matches_the_oracle(settings: Settings, tmp_path: Path) -> None:
    config = DemoWebConfig(access_log_dir=tmp_path / "access", slow_delay_s=0.2)
    async with DemoWeb(port=0, config=config) as web:
        base = {i: web.base_url(demo_host(i)) for i in range(1, 7)}
        listed = [f"{url}/" for url in base.values()] + [f"{base[i]}/section/1" for i in (1, 2)]
        listed += [
            f"{base[3]}/missing/1",
            f"{base[4]}/report/1",
            f"{base[5]}/redirect/3/2",
            f"{base[6]}/slow/2",
        ]
        scope = Scope(mode="domain", max_depth=0)
        expectation = expect_crawl(listed, scope, config=config, fetch_timeout_s=3)
        assert expectation.exact and expectation.expected == len(listed) - 2
        pipeline = Pipeline(settings, log_dir=tmp_path / "logs", extra_env=ENV)
        pipeline.start(*HOT_PATH)
        batch = f"demo-test-{time.time_ns()}"
        started = time.time()
        try:
            progress, stored = await cmd_demo.publish_and_wait(
                settings, listed, scope=scope, batch=batch, sitemaps=False, timeout_s=180
            )
        finally:
            pipeline.stop()
        report = demo_report(expectation, stored, progress, batch=batch)
        assert report.ok, (report.explain(), {s: pipeline.logs(s)[-2000:] for s in HOT_PATH})
        assert report.stored == report.expected == len(listed) - 2  # the 404 is dead, the PDF skipped
        assert report.to_json()["requested"] == len(listed)
        records = await wait_for_records(
            config.access_log_dir or tmp_path, at_least=len(listed), since=started
        )
    crawler = fetch_counts(records, user_agent=settings.ingestor.user_agent.split("/")[0])
    pages = {url: n for url, n in crawler.items() if not url.endswith("/robots.txt")}
    assert {u for u in expectation.urls if u not in pages} == set()  # every listed URL fetched
    assert all(n == 1 for url, n in pages.items() if "/redirect/" not in url), pages  # none twice
    assert not set(pages) & expectation.never_fetched()
