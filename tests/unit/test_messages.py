from __future__ import annotations

import time

import msgpack
import pytest

from workers.errors import MessageDecodeError
from workers.messages import (
    CrawlRequest,
    DeadLetter,
    ProcessedPage,
    RawPage,
    RoutedPage,
    StoredPage,
    compress_html,
    decode,
    encode,
    make_headers,
    peek,
    read_headers,
    truncate_body,
)


def raw_page(body: bytes = b"<html><body>hello</body></html>") -> RawPage:
    return RawPage(
        url="https://example.com/",
        url_hash="ab" * 16,
        host="example.com",
        final_url="https://example.com/",
        status=200,
        content_type="text/html",
        html_zstd=compress_html(body),
        content_hash="cd" * 16,
        fetched_at=time.time(),
        body_bytes=len(body),
        headers={"content-type": "text/html"},
        timings={"ttfb_ms": 1.5},
        redirects=["http://example.com/"],
        batch="000001-001000",
        rank=1,
    )


def test_round_trip_every_type() -> None:
    page = raw_page()
    routed = RoutedPage(page=page, route="fast", score=100, rules=["article"])
    processed = ProcessedPage(
        url=page.url,
        url_hash=page.url_hash,
        host=page.host,
        final_url=page.final_url,
        status=200,
        route="fast",
        score=100,
        fetched_at=page.fetched_at,
        processed_at=time.time(),
        content_hash=page.content_hash,
        html_zstd=page.html_zstd,
        markdown="# hi",
        simhash=2**64 - 1,
    )
    stored = StoredPage(
        url=page.url, url_hash=page.url_hash, final_url=page.url, status=200, route="fast", stored_at=1.0
    )
    letter = DeadLetter(
        payload=b"\x00\x01",
        source_topic="raw.page",
        partition=1,
        offset=2,
        stage="router",
        error_class="MessageDecodeError",
        error_message="bad",
        attempt=1,
        first_failure_at=1.0,
        last_failure_at=2.0,
    )
    request = CrawlRequest(url=page.url, url_hash=page.url_hash, host=page.host, requested_at=1.0)
    for msg in (page, routed, processed, stored, letter, request):
        assert decode(encode(msg), type(msg)) == msg


def test_html_survives_compression() -> None:
    body = b"<html>" + b"x" * 1_000_000 + b"</html>"
    page = decode(encode(raw_page(body)), RawPage)
    assert page.html_bytes() == body


@pytest.mark.parametrize(
    "data",
    [
        b"",
        encode(raw_page())[:-7],  # truncated msgpack
        b"\xc1\xc1\xc1",  # invalid msgpack bytes
        msgpack.packb([1, 2, 3]),  # not a map
        msgpack.packb({"v": 99, "t": "raw_page"}),  # unknown version
        msgpack.packb({"v": 1, "t": "stored_page"}),  # wrong type
        msgpack.packb({"v": 1, "t": "raw_page", "url": "x"}),  # missing fields
    ],
    ids=["empty", "truncated", "invalid", "not-a-map", "unknown-version", "wrong-type", "missing-fields"],
)
def test_malformed_input_raises_the_documented_error(data: bytes) -> None:
    with pytest.raises(MessageDecodeError):
        decode(data, RawPage)


def test_mistyped_field_is_a_decode_error() -> None:
    body = msgpack.unpackb(encode(raw_page()))
    body["status"] = "200"
    with pytest.raises(MessageDecodeError, match="status"):
        decode(msgpack.packb(body, use_bin_type=True), RawPage)


def test_invalid_zstd_is_a_decode_error() -> None:
    page = raw_page()
    page.html_zstd = b"not zstd at all"
    decoded = decode(encode(page), RawPage)
    with pytest.raises(MessageDecodeError, match="zstd"):
        decoded.html_bytes()


def test_size_policy_truncates_and_flags() -> None:
    assert truncate_body(b"abc", 5) == (b"abc", False)
    assert truncate_body(b"abcdef", 4) == (b"abcd", True)


def test_headers_round_trip_and_tolerate_garbage() -> None:
    assert read_headers(make_headers("t1", 3)) == ("t1", 3)
    trace, attempt = read_headers([("attempt", b"x")])
    assert attempt == 1 and trace


def test_peek_never_raises() -> None:
    assert peek(b"\xc1") == {}
    assert peek(None) == {}
    routed = encode(RoutedPage(page=raw_page(), route="fast", score=1))
    assert peek(routed)["url"] == "https://example.com/"


def test_version_1_records_still_decode_with_new_fields_at_defaults() -> None:
    v1 = msgpack.packb(
        {
            "v": 1,
            "t": "crawl_request",
            "url": "https://example.com/",
            "url_hash": "ab" * 16,
            "host": "example.com",
            "requested_at": 1.0,
            "batch": "b",
            "rank": 3,
            "recrawl": False,
        },
        use_bin_type=True,
    )
    req = decode(v1, CrawlRequest)
    assert (req.url, req.rank, req.kind, req.ctx, req.not_before) == (
        "https://example.com/",
        3,
        "page",
        None,
        0.0,
    )


def test_crawl_context_and_scope_round_trip_nested() -> None:
    from workers.messages import SCHEMA_VERSION, CrawlContext, Scope

    req = CrawlRequest(
        url="https://example.com/a",
        url_hash="ab" * 16,
        host="example.com",
        requested_at=1.0,
        ctx=CrawlContext(
            depth=2,
            seed="example.com",
            source="link",
            parent="cd" * 16,
            scope=Scope(mode="domain", max_depth=3, max_pages_per_host=200, include=[r"/news/"]),
        ),
    )
    data = encode(req)
    assert msgpack.unpackb(data)["v"] == SCHEMA_VERSION
    back = decode(data, CrawlRequest)
    assert back == req
    assert back.ctx is not None and back.ctx.scope is not None and back.ctx.scope.include == [r"/news/"]
