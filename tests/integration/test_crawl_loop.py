"""The crawl loop end to end: listed pages → stored → discovery → new in-scope URLs → stored.

Real daemons as subprocesses (discovery included) over real services and the demo web.
"""

from __future__ import annotations

import html as html_lib
import re
import time
from pathlib import Path
from urllib.parse import urljoin

import aiohttp
import pytest

from tests.helpers.ledger import crawl_batch, ledger_states
from tests.helpers.pipeline import HOT_PATH, Pipeline
from tests.integration.test_pipeline_e2e import TIMEOUT_ENV
from workers.demoweb import DemoResolver, DemoWeb, demo_host
from workers.messages import Scope
from workers.scope import ASSET_EXTENSIONS
from workers.settings import Settings
from workers.urls import canonicalize, host_of, url_hash

pytestmark = pytest.mark.integration

_ANCHOR = re.compile(r"""<a\b[^>]*>""", re.IGNORECASE)
_HREF = re.compile(r"""\bhref\s*=\s*["']([^"']+)["']""", re.IGNORECASE)
_NOFOLLOW = re.compile(r"""\brel\s*=\s*["'][^"']*\b(nofollow|sponsored|ugc)\b""", re.IGNORECASE)


async def _links(url: str) -> set[str]:
    """In-scope (same host), non-asset links of a page, found independently of the extractor."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=DemoResolver())) as session,
        session.get(url) as response,
    ):
        html = await response.text()
    out = set()
    for tag in _ANCHOR.findall(html):
        found = _HREF.search(tag)
        if found is None or _NOFOLLOW.search(tag):
            continue  # rel=nofollow (and its sponsored/ugc kin) is not followed
        absolute = urljoin(url, html_lib.unescape(found.group(1)).strip())
        if not absolute.startswith("http"):
            continue
        canonical = canonicalize(absolute)
        path = canonical.split("?", 1)[0].rsplit("/", 1)[-1]
        if host_of(canonical) == host_of(url) and path.rsplit(".", 1)[-1].lower() not in ASSET_EXTENSIONS:
            out.add(canonical)
    return out


# "1": every record of a discovery batch in a ledger transaction of its own (the bound is
# reached by each page with a link), as a batch of pages with many links each is split.
@pytest.mark.parametrize("links_per_transaction", ["5000", "1"])
async def test_depth_one_stores_every_in_scope_link_once(
    settings: Settings, demo_web: DemoWeb, tmp_path: Path, links_per_transaction: str
) -> None:
    home = canonicalize(f"http://{demo_host(7)}:{demo_web.port}/")
    expected_children = await _links(home) - {home}
    assert len(expected_children) >= 5
    env = {**TIMEOUT_ENV, "STREAMCRAWL_DISCOVERY_LINKS_PER_TRANSACTION": links_per_transaction}
    pipeline = Pipeline(settings, log_dir=tmp_path / "logs", extra_env=env)
    pipeline.start(*HOT_PATH)
    batch = f"loop-{time.time_ns()}"
    try:
        progress = await crawl_batch(
            settings, [home], batch, timeout_s=180, scope=Scope(mode="host", max_depth=1)
        )
    finally:
        pipeline.stop()
    logs = {stage: pipeline.logs(stage) for stage in HOT_PATH}
    assert progress.complete, (progress.summary(), logs)
    states = await ledger_states(settings, batch)
    depth1 = {r["url"] for r in states.values() if r["depth"] == 1}
    assert depth1 == expected_children, (sorted(depth1 ^ expected_children), logs["discovery"])
    assert all(r["published"] for r in states.values())
    assert progress.requested == 1 + len(expected_children) == len(states)
    assert progress.discovered == len(expected_children)
    assert states[url_hash(home)]["state"] == "stored"
    assert progress.dropped_by_reason.get("out_of_scope", 0) > 0  # the home page links to other sites
    assert progress.stored + progress.skipped + progress.dead_lettered == progress.requested
