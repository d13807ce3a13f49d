"""The demo web served on a free port: every URL kind answers as its expected outcome says.

A tiny reference fetcher (robots, <= 5 redirects, retries on 5xx/429 honouring Retry-After,
read and total timeouts, HTML-only, meta robots / X-Robots-Tag noindex) plays the ingestor's
part; if it reaches the outcome ``demo_urls`` and the crawl oracle promise for every URL, the
lists, the oracle and the server agree.
"""

from __future__ import annotations

import asyncio
import gzip
import re
import time
import urllib.robotparser
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest

from workers.demoweb import DemoResolver, DemoURL, DemoWeb, DemoWebConfig, data_urls, demo_urls
from workers.demoweb.accesslog import fetch_counts, wait_for_records
from workers.demoweb.data import DataFiles, locate_data_dir
from workers.demoweb.hosts import demo_host
from workers.demoweb.oracle import expect_crawl
from workers.demoweb.site import Origin
from workers.demoweb.sitemaps import sitemap_entries
from workers.messages import Scope
from workers.urls import canonicalize

pytestmark = pytest.mark.integration

MAX_BODY = 5 * 1024 * 1024
_META_ROBOTS = re.compile(rb'<meta name="robots" content="([a-z, ]+)">')
READ_TIMEOUT = aiohttp.ClientTimeout(sock_read=1.0)
CONFIG = DemoWebConfig(slow_delay_s=0.2, stall_interval_s=0.2, stall_max_s=4.0, crawl_delay_s=0.1)


@pytest.fixture(scope="module")
async def web() -> AsyncIterator[DemoWeb]:
    async with DemoWeb(port=0, config=CONFIG) as server:
        yield server


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(resolver=DemoResolver(), limit=50))


async def _robots_allows(session: aiohttp.ClientSession, url: str) -> bool:
    parts = urlsplit(url)
    async with session.get(f"{parts.scheme}://{parts.netloc}/robots.txt") as resp:
        text = await resp.text()
    parser = urllib.robotparser.RobotFileParser()
    parser.parse(text.splitlines())
    return parser.can_fetch("StreamCrawl", url)


async def _outcome(session: aiohttp.ClientSession, url: str) -> tuple[str, bytes, str]:
    """(stored | dead_lettered | skipped, body, content type) as a simple ingestor would see it."""
    if not await _robots_allows(session, url):
        return "skipped", b"", "robots"
    for _ in range(3):
        try:
            async with asyncio.timeout(2.5):  # total deadline per attempt, body included
                result = await _one_attempt(session, url)
        except TimeoutError:
            continue
        if result is not None:
            return result
    return "dead_lettered", b"", ""


async def _one_attempt(session: aiohttp.ClientSession, url: str) -> tuple[str, bytes, str] | None:
    """One attempt: the outcome, or None to retry."""
    current = url
    for _hop in range(6):
        async with session.get(current, allow_redirects=False, timeout=READ_TIMEOUT) as resp:
            if resp.status in (301, 302, 307, 308):
                current = urljoin(current, resp.headers["Location"])
                continue
            if resp.status == 429 or resp.status >= 500:
                await asyncio.sleep(float(resp.headers.get("Retry-After", "0.1")))
                return None
            if resp.status != 200:
                return "dead_lettered", b"", ""
            ctype = resp.headers.get("Content-Type", "")
            if not ctype.startswith(("text/html", "application/xhtml+xml")):
                return "skipped", b"", ctype
            if "noindex" in resp.headers.get("X-Robots-Tag", ""):
                return "skipped", b"", "noindex"
            body = bytearray()
            async for chunk in resp.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) >= MAX_BODY:
                    break
            meta = _META_ROBOTS.search(bytes(body[:65536]))
            if meta and meta.group(1) in (b"noindex", b"none"):
                return "skipped", b"", "noindex"
            return "stored", bytes(body[:MAX_BODY]), ctype
    return "dead_lettered", b"", ""  # more than 5 redirects


def _decode(body: bytes, ctype: str) -> str:
    charset = ctype.partition("charset=")[2] or "utf-8"
    try:
        return body.decode(charset, errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


async def test_every_kind_reaches_its_expected_outcome(web: DemoWeb) -> None:
    urls = demo_urls(port=web.port, hosts=12, per_host=10, failures_each=1, timeout_delay_s=5)
    kinds = {u.kind for u in urls}
    assert {"stall", "timeout", "huge", "redirect_too_many", "robots_blocked", "charset_shift_jis"} <= kinds
    started = time.monotonic()
    async with _session() as session:
        results = await asyncio.gather(*(_outcome(session, u.url) for u in urls))
    mismatches = [
        (u.kind, u.url, got) for u, (got, _, _) in zip(urls, results, strict=True) if got != u.expected
    ]
    assert not mismatches
    for u, (_, body, ctype) in zip(urls, results, strict=True):
        if u.marker and u.expected == "stored" and u.kind != "spa":
            assert u.marker in _decode(body, ctype).replace("&#x27;", "'"), (u.kind, u.url)
        if u.kind.startswith("huge"):
            assert len(body) == MAX_BODY
    assert time.monotonic() - started < 30


async def test_a_crawl_oracle_outcome_for_every_url_of_two_sites(web: DemoWeb) -> None:
    """Every URL a depth-2 crawl requests answers as the oracle says (the oracle never fetched it)."""
    listed = [f"{web.base_url(demo_host(i))}/" for i in (5, 15)]  # site-015 has huge_length, site-005 a stall
    expectation = expect_crawl(listed, Scope(mode="domain", max_depth=2), config=CONFIG, fetch_timeout_s=2.5)
    assert expectation.exact and expectation.requested > 80
    urls = list(expectation.urls.values())
    async with _session() as session:
        results = await asyncio.gather(*(_outcome(session, u.url) for u in urls))
    mismatches = [
        (u.kind, u.url, got, u.outcome)
        for u, (got, _, _) in zip(urls, results, strict=True)
        if got != u.outcome
    ]
    assert not mismatches
    for u, (_, _, why) in zip(urls, results, strict=True):
        if u.reason in ("robots", "noindex"):
            assert why == u.reason, u.url


async def test_sitemaps_parse_to_the_oracles_entries(web: DemoWeb) -> None:
    host = demo_host(3)
    base = web.base_url(host)
    found: list[str] = []
    async with _session() as session:
        async with session.get(f"{base}/robots.txt") as resp:
            todo = [
                line.split(":", 1)[1].strip()
                for line in (await resp.text()).splitlines()
                if line.startswith("Sitemap:")
            ]
        assert todo == [f"{base}/sitemap.xml", f"{base}/sitemaps/extra.txt"]
        kinds = set()
        while todo:
            async with session.get(todo.pop(0)) as resp:
                body, ctype = await resp.read(), resp.headers["Content-Type"]
            assert resp.status == 200
            kinds.add(ctype.split(";")[0])
            if ctype == "application/gzip":
                body = gzip.decompress(body)
            if ctype.startswith("text/plain"):
                found += body.decode().split()
                continue
            root = ET.fromstring(body)
            locs = [el.text or "" for el in root.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")]
            if root.tag.endswith("sitemapindex"):
                todo += locs
            else:
                found += locs
    assert kinds == {"application/xml", "application/gzip", "text/plain"}
    assert sorted(found) == sorted(sitemap_entries(Origin(host, f":{web.port}", 60)))
    assert any("utm_source=sitemap&utm_medium=xml" in u for u in found)  # &amp; decoded
    assert len({canonicalize(u) for u in found}) < len(found)  # duplicates collapse


async def test_host_header_on_a_plain_loopback_connection(web: DemoWeb) -> None:
    async with aiohttp.ClientSession() as session:
        url = f"http://127.0.0.1:{web.port}/article/1"
        async with session.get(url, headers={"Host": f"site-003.demo.test:{web.port}"}) as resp:
            body = await resp.text()
        assert resp.status == 200 and f"http://site-003.demo.test:{web.port}/article/1" in body
        async with session.get(url, headers={"Host": "example.com"}) as resp:
            assert resp.status == 404


async def test_spa_shell_bundle_and_api_are_served(web: DemoWeb) -> None:
    spa = next(u for u in demo_urls(port=web.port, hosts=3, per_host=10) if u.kind == "spa")
    async with _session() as session:
        async with session.get(spa.url) as resp:
            shell = await resp.text()
        bundle = shell.split('<script src="')[1].split('"')[0]
        base = spa.url.rsplit("/app/", 1)[0]
        async with session.get(base + bundle) as resp:
            assert resp.status == 200 and "javascript" in resp.headers["Content-Type"]
        async with session.get(f"{base}/api/app/{spa.url.rsplit('/', 1)[1]}.json") as resp:
            assert (await resp.json())["title"] == spa.marker
    assert spa.marker and spa.marker not in shell


async def test_shared_data_hosts(web: DemoWeb) -> None:
    files = DataFiles(locate_data_dir())
    if files.root is None:
        pytest.skip("../shared/data not present")
    urls = data_urls(port=web.port)
    by_kind: dict[str, DemoURL] = {}
    for u in urls:
        by_kind.setdefault(u.kind, u)
    assert {"readability", "rendertron", "spa_csr"} <= set(by_kind)
    async with _session() as session:
        for u in by_kind.values():
            async with session.get(u.url) as resp:
                assert resp.status == 200, u.url
                assert resp.headers["Content-Type"].startswith("text/html")
        app = next(a for a in files.spa_apps.values() if (a.directory / "app.css").is_file())
        async with session.get(f"http://spa.demo.test:{web.port}/{app.name}/app.css") as resp:
            assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/css")
        async with session.get(f"http://spa.demo.test:{web.port}/{app.name}", allow_redirects=False) as resp:
            assert resp.status == 301
        async with session.get(f"http://readability.demo.test:{web.port}/../../README.md") as resp:
            assert resp.status == 404


async def test_processes_share_a_port_first_request_state_and_the_access_log(tmp_path: Path) -> None:
    config = DemoWebConfig(slow_delay_s=0.2, access_log_dir=tmp_path)
    async with DemoWeb(port=0, processes=2, config=config) as web:
        assert web.pid is not None
        statuses = []
        url = f"http://site-001.demo.test:{web.port}/flaky/9"
        started = time.time()
        for _ in range(12):  # a fresh connection each time: SO_REUSEPORT spreads them over both processes
            async with (
                _session() as session,
                session.get(url, headers={"User-Agent": "StreamCrawl/test"}) as resp,
            ):
                statuses.append(resp.status)
        async with (
            _session() as session,
            session.get(f"http://site-001.demo.test:{web.port}/missing/1") as resp,
        ):
            assert resp.status == 404
        assert statuses == [500] + [200] * 11
        records = await wait_for_records(tmp_path, at_least=13)  # lines are flushed every 0.2 s
    assert web.pid is None
    assert len(records) == 13 and len({r.pid for r in records}) == 2  # both processes logged
    assert [r.status for r in records if r.target == "/flaky/9"] == statuses
    assert all(started <= r.time <= time.time() for r in records)
    counts = fetch_counts(records, user_agent="StreamCrawl")
    assert counts == {f"http://site-001.demo.test:{web.port}/flaky/9": 12}


async def test_stop_is_quick_while_a_stall_is_open() -> None:
    web = DemoWeb(port=0, config=DemoWebConfig(stall_max_s=60))
    await web.start()
    async with _session() as session:
        pending = asyncio.ensure_future(session.get(f"http://site-001.demo.test:{web.port}/stall/1"))
        await asyncio.sleep(0.3)
        started = time.monotonic()
        await web.stop()
        assert time.monotonic() - started < 5
        pending.cancel()
        await asyncio.gather(pending, return_exceptions=True)
