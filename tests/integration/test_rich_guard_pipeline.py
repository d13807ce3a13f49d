"""The browser guard on the real pipeline: ingestor → router → rich renderer → storage.

Private networks are refused and only 127.0.0.1/32 is allowed. The crawled page lives on
the allowed origin; its JavaScript, images, iframes, beacons, workers and the rest go for
a canary on 127.0.0.2 by IP, by a name the resolver maps there, and through redirects
from the origin. The canary must see nothing, the origin exactly one GET for the
document (the ingestor's: the renderer serves it from the RawPage), and the stored page
must hold what the app rendered after JavaScript, and no secret.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.helpers.ledger import crawl_batch
from tests.helpers.pipeline import Pipeline
from tests.integration.guard_site import (
    AFTER_JS,
    OVERRIDES,
    SECRET,
    Canary,
    Origin,
    hostile_page,
    serve_canary,
    serve_origin,
)
from tests.integration.test_pipeline_e2e import TIMEOUT_ENV
from workers.settings import Settings
from workers.storage import PageStore
from workers.urls import normalize_url, url_hash

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    pytest.mark.skipif(
        not shutil.which("chromium"), reason="Debian chromium not installed (make test installs it)"
    ),
]
STAGES = ("ingestor", "router", "fast_extractor", "rich_renderer", "storage_writer", "discovery")
GUARD_ENV = {
    "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "false",
    "STREAMCRAWL_INGESTOR_ALLOWED_NETWORKS": json.dumps(["127.0.0.1/32"]),
    "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": json.dumps(OVERRIDES),
    # Images through the guard too (they are not loaded by default), so <img> is attacked.
    "STREAMCRAWL_RENDERER_BLOCKED_RESOURCE_TYPES": json.dumps(["media", "font", "eventsource"]),
    "STREAMCRAWL_RENDERER_PAGE_TIMEOUT_S": "15",
}


@pytest.fixture
async def canary() -> AsyncIterator[Canary]:
    async with serve_canary() as served:
        yield served


@pytest.fixture
async def origin() -> AsyncIterator[Origin]:
    async with serve_origin() as served:
        yield served


@pytest.fixture
async def pipeline(settings: Settings, tmp_path: Path) -> AsyncIterator[Pipeline]:
    running = Pipeline(settings, log_dir=tmp_path / "logs", extra_env={**TIMEOUT_ENV, **GUARD_ENV})
    running.start(*STAGES)
    try:
        yield running
    finally:
        running.stop()


async def test_crawled_page_cannot_reach_the_canary_and_is_stored_as_rendered(
    settings: Settings, pipeline: Pipeline, canary: Canary, origin: Origin
) -> None:
    name = f"http://rebind.guard.test:{canary.http_port}"
    targets = [
        canary.base,
        name,
        origin.url(f"/go?to={canary.base}/redirected"),
        origin.url(f"/go?to={name}/redirected"),
    ]
    origin.pages["/hostile.html"] = hostile_page(targets, stun=f"stun:127.0.0.2:{canary.udp_port}")
    url = origin.url("/hostile.html")
    progress = await crawl_batch(settings, [url], f"guard-{time.time_ns()}", timeout_s=180)
    summary = progress.summary()
    assert summary["stored"] == 1, (summary, progress.examples, pipeline.logs("rich_renderer"))
    assert summary["rich"] == 1, "the app page is routed to the renderer"
    async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
        h = url_hash(normalize_url(url))
        row = await store.get_page(h)
        assert row is not None and row.route == "rich" and not row.fallback, row
        markdown = await store.get_markdown(h) or ""
    assert AFTER_JS in markdown, markdown[:600]
    assert "fetch0 blocked" in markdown and "fetch3 blocked" in markdown
    assert SECRET not in markdown
    assert canary.hits == 0, (canary.requests, canary.datagrams)
    assert origin.gets("/hostile.html") == 1, origin.requests  # the ingestor's, and only that
    assert origin.gets("/data.json") == 1 and origin.gets("/app.js") == 1
