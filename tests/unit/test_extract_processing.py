"""ProcessedPage building (both paths) and the fast extractor's extraction processes."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from workers.errors import ExtractionError, MessageDecodeError
from workers.fast_extractor.pool import ExtractionPool
from workers.fast_extractor.processing import process_routed
from workers.messages import (
    CrawlContext,
    ProcessedPage,
    RawPage,
    RoutedPage,
    Scope,
    compress_html,
    decode,
    encode,
)
from workers.processed import cap_utf8, processed_base
from workers.settings import ExtractorSettings

ARTICLE = (
    b"<html lang=en><head><title>A title</title><meta name=robots content=nofollow></head><body><article>"
    + b"<p>The council approved the plan, after a long debate, and work starts next spring in the city.</p>"
    * 30
    + b'<a href="/next" rel=nofollow>next</a></article></body></html>'
)


def _routed(html: bytes = ARTICLE, **page: object) -> RoutedPage:
    raw = RawPage(
        url="http://a.test/x",
        url_hash="0" * 32,
        host="a.test",
        final_url="http://a.test/x",
        status=200,
        content_type="text/html; charset=utf-8",
        html_zstd=compress_html(html) if html else b"",
        content_hash="c",
        fetched_at=1.0,
        charset="utf-8",
        body_bytes=len(html),
        http_version="HTTP/2",
        status_reason="OK",
        response_headers=[["Content-Type", "text/html"], ["X-Robots-Tag", "streamcrawl: noarchive"]],
        request_headers=[["User-Agent", "StreamCrawl/0.1"]],
        peer_ip="127.0.0.1",
        redirects=["http://a.test/old"],
        batch="b1",
        rank=7,
        request_id="r1",
        ctx=CrawlContext(depth=1, seed="a.test", source="link", scope=Scope(max_depth=2)),
    )
    return RoutedPage(page=dataclasses.replace(raw, **page), route="fast", score=90, rules=["r"])  # type: ignore[arg-type]


def test_the_base_copies_everything_storage_needs() -> None:
    routed = _routed()
    base = processed_base(routed)
    page = routed.page
    for name in (
        "url", "url_hash", "host", "final_url", "status", "content_hash", "html_zstd", "batch", "rank",
        "ctx", "request_id", "content_type", "charset", "body_bytes", "http_version", "status_reason",
        "response_headers", "request_headers", "peer_ip", "redirects",
    ):  # fmt: skip
        assert getattr(base, name) == getattr(page, name), name
    assert base.route == "fast" and base.score == 90 and base.rules == ["r"]
    assert base.truncated_parts == []
    assert processed_base(_routed(truncated=True)).truncated_parts == ["raw"]


def test_processing_fills_text_language_robots_and_quality() -> None:
    out = process_routed(_routed())
    assert out.text.startswith("The council approved the plan") and "**" not in out.markdown
    assert out.language == "en" and out.language_score and out.language_score > 0.9
    assert out.robots == ["noarchive", "nofollow"]
    assert out.outlinks == ["http://a.test/next"] and out.outlinks_nofollow == ["http://a.test/next"]
    assert out.quality["method"] == "readability" and out.quality_flags == []
    assert out.ctx == _routed().page.ctx and out.peer_ip == "127.0.0.1"


def test_a_304_or_skipped_page_passes_untouched() -> None:
    for routed in (_routed(b"", status=304), _routed(b"", skipped="robots")):
        out = process_routed(routed)
        assert out == dataclasses.replace(processed_base(routed), processed_at=out.processed_at)
        assert out.markdown == out.text == "" and out.status == routed.page.status


def test_text_and_markdown_are_capped_and_flagged() -> None:
    limits = ExtractorSettings(max_text_bytes=1000, max_markdown_bytes=800, max_outlinks=0)
    out = process_routed(_routed(), settings=limits)
    assert len(out.text.encode()) <= 1000 and len(out.markdown.encode()) <= 800
    assert out.truncated_parts == ["markdown", "text", "outlinks"]
    assert out.outlinks == [] and out.outlinks_total == 1


def test_cap_utf8_cuts_on_a_character_boundary() -> None:
    assert cap_utf8("héllo", 100) == ("héllo", False)
    assert cap_utf8("é" * 100, 51) == ("é" * 25, True)


@contextlib.asynccontextmanager
async def _started(
    *, deadline_s: float, wall_deadline_s: float | None = None
) -> AsyncIterator[ExtractionPool]:
    """A started one-process pool, closed on the way out."""
    p = ExtractionPool(processes=1, deadline_s=deadline_s, wall_deadline_s=wall_deadline_s)
    await p.start()
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
async def pool() -> AsyncIterator[ExtractionPool]:
    async with _started(deadline_s=5.0) as p:
        yield p


async def test_the_extraction_process_returns_what_processing_returns(pool: ExtractionPool) -> None:
    routed = _routed()
    out = await pool.extract(encode(routed))
    assert out.key == b"a.test"
    remote = decode(out.value, ProcessedPage)
    local = process_routed(routed, route="fast")
    assert dataclasses.replace(remote, processed_at=0) == dataclasses.replace(local, processed_at=0)


async def test_bad_records_fail_with_the_right_error(pool: ExtractionPool) -> None:
    with pytest.raises(MessageDecodeError):
        await pool.extract(b"\xc1 not msgpack")
    bad = dataclasses.replace(_routed(), page=dataclasses.replace(_routed().page, html_zstd=b"not zstd"))
    with pytest.raises(MessageDecodeError, match="zstd"):
        await pool.extract(encode(bad))
    assert (await pool.extract(encode(_routed()))).key == b"a.test"  # still serving


# With the nesting bound lifted (the processes read their settings from the environment),
# 40,000 nested <div>s cost the HTML tree builder seconds: a page that overruns its deadline.
SLOW = b"<html><body>" + b"<div>" * 40_000 + b"x" + b"</div>" * 40_000


@pytest.fixture
def unbounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STREAMCRAWL_EXTRACTOR_MAX_DEPTH", "1000000")


@pytest.mark.usefixtures("unbounded")
async def test_a_page_past_its_deadline_is_dead_and_the_pool_goes_on() -> None:
    async with _started(deadline_s=0.3) as pool:
        first = pool.pids()
        with pytest.raises(ExtractionError, match="deadline"):
            await pool.extract(encode(_routed(SLOW)))
        assert pool.replaced == 1 and pool.pids() != first
        pool.deadline_s = 30.0
        assert (await pool.extract(encode(_routed()))).key == b"a.test"
    assert not pool.pids()


async def test_the_deadline_counts_cpu_time_so_a_starved_process_is_not_killed_for_waiting() -> None:
    # SIGSTOP stands in for a loaded machine: the process gets no core for 1.5 s, three times
    # its CPU deadline, and the page is still extracted once it runs.
    async with _started(deadline_s=0.5, wall_deadline_s=30.0) as pool:
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGSTOP)
        asyncio.get_running_loop().call_later(1.5, lambda: os.kill(pid, signal.SIGCONT))
        assert (await pool.extract(encode(_routed()))).key == b"a.test"
        assert pool.replaced == 0 and pool.pids() == [pid]


async def test_a_process_that_gets_no_cpu_at_all_still_meets_the_wall_clock_deadline() -> None:
    async with _started(deadline_s=5.0, wall_deadline_s=1.0) as pool:
        (pid,) = pool.pids()
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        with pytest.raises(ExtractionError, match="wall-clock deadline"):
            await pool.extract(encode(_routed()))
        assert 1.0 <= time.monotonic() - started < 5.0
        assert pool.replaced == 1 and pool.pids() != [pid]
        assert (await pool.extract(encode(_routed()))).key == b"a.test"


@pytest.mark.usefixtures("unbounded")
async def test_a_process_that_dies_fails_its_page_and_is_replaced(pool: ExtractionPool) -> None:
    victim = pool.pids()[0]
    asyncio.get_running_loop().call_later(0.2, lambda: os.kill(victim, signal.SIGKILL))
    with pytest.raises(ExtractionError, match="died"):
        await pool.extract(encode(_routed(SLOW)))
    assert pool.pids() and pool.pids()[0] != victim
    assert (await pool.extract(encode(_routed()))).key == b"a.test"


def test_the_rich_path_builds_the_same_shape() -> None:
    from workers.rich import Rendered
    from workers.rich_renderer.daemon import rendered_page

    routed = _routed()
    rendered = Rendered(
        html=ARTICLE.decode(), markdown="", title=None, description=None, lang="en",
        links=[], status=200, elapsed_s=0.1,
    )  # fmt: skip
    out = rendered_page(routed, rendered)
    fast = process_routed(routed)
    assert out.route == "rich" and out.rendered_html_zstd
    for name in ("text", "markdown", "language", "robots", "outlinks", "outlinks_nofollow", "ctx",
                 "request_id", "response_headers", "peer_ip", "redirects", "quality_flags"):  # fmt: skip
        assert getattr(out, name) == getattr(fast, name), name
    app = rendered_page(
        routed,
        dataclasses.replace(
            rendered, html="<html><body><nav><a href='/a'>Home</a></nav><p>Hi</p></body></html>"
        ),
    )
    assert app.quality["method"] == "rendered-body" and "Home" in app.text and app.word_count == 2
