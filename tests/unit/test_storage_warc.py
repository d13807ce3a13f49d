"""WARC records of one page, read back with warcio: headers, digests, fallbacks."""

from __future__ import annotations

import gzip
import io
import time

import pytest
from warcio.archiveiterator import ArchiveIterator

from workers.messages import ProcessedPage, compress_html
from workers.storage.warc import (
    build_page_records,
    fix_response_headers,
    identify_payload_type,
    sha1_digest,
    validators_of,
    warc_date,
)
from workers.urls import url_hash

BODY = b"<!doctype html><html><head><title>Hallo</title></head><body><p>Guten Tag</p></body></html>"
RESPONSE_HEADERS = [
    ["Date", "Mon, 01 Dec 2025 10:00:00 GMT"],
    ["Content-Type", "text/html; charset=utf-8"],
    ["Content-Encoding", "gzip"],
    ["Transfer-Encoding", "chunked"],
    ["ETag", '"v1"'],
    ["Last-Modified", "Sun, 30 Nov 2025 08:00:00 GMT"],
    ["Set-Cookie", "a=1"],
    ["Set-Cookie", "b=2"],
]


def page(**changes: object) -> ProcessedPage:
    url = "https://de.example.test/artikel?id=7"
    values: dict[str, object] = {
        "url": url,
        "url_hash": url_hash(url),
        "host": "de.example.test",
        "final_url": url,
        "status": 200,
        "route": "fast",
        "score": 80,
        "fetched_at": 1_764_583_200.123456,
        "processed_at": time.time(),
        "content_hash": "c" * 32,
        "html_zstd": compress_html(BODY),
        "markdown": "# Hallo\n\nGuten Tag",
        "text": "Hallo Guten Tag",
        "language": "de",
        "language_score": 0.98,
        "simhash": 2**64 - 5,
        "response_headers": RESPONSE_HEADERS,
        "request_headers": [["Host", "de.example.test"], ["User-Agent", "StreamCrawl/0.1"]],
        "peer_ip": "127.0.0.7",
        "http_version": "HTTP/2",
        "status_reason": "",
        "content_type": "text/html; charset=utf-8",
        "quality_flags": ["short_text"],
        "truncated_parts": [],
    }
    values.update(changes)
    return ProcessedPage(**values)  # type: ignore[arg-type]


def records(p: ProcessedPage) -> list:  # type: ignore[type-arg]
    data = b"".join(r.data for r in build_page_records(p).records)
    out = []
    for rec in ArchiveIterator(io.BytesIO(data), check_digests="raise"):
        out.append((rec, rec.content_stream().read()))
    return out


def test_every_record_is_its_own_gzip_member_and_digests_verify() -> None:
    built = build_page_records(page())
    for r in built.records:
        assert gzip.decompress(r.data).startswith(b"WARC/1.1\r\n")
        assert len(list(ArchiveIterator(io.BytesIO(r.data), check_digests="raise"))) == 1
    kinds = [rec.rec_type for rec, _ in records(page())]
    assert kinds == ["request", "response", "metadata", "conversion", "conversion"]


def test_the_response_keeps_headers_as_received_with_storm_crawlers_fixes() -> None:
    response = next((rec, body) for rec, body in records(page()) if rec.rec_type == "response")
    rec, body = response
    assert body == BODY
    assert rec.http_headers.protocol == "HTTP/1.1"  # HTTP/2 written as HTTP/1.1
    assert rec.http_headers.statusline == "200 OK"  # HTTP/2 has no reason phrase: the standard one
    assert rec.http_headers.headers == [
        ("Date", "Mon, 01 Dec 2025 10:00:00 GMT"),
        ("Content-Type", "text/html; charset=utf-8"),
        ("X-Crawler-Content-Encoding", "gzip"),
        ("X-Crawler-Transfer-Encoding", "chunked"),
        ("ETag", '"v1"'),
        ("Last-Modified", "Sun, 30 Nov 2025 08:00:00 GMT"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
        ("Content-Length", str(len(BODY))),
    ]
    h = rec.rec_headers
    assert h.get_header("WARC-Target-URI") == "https://de.example.test/artikel?id=7"
    assert h.get_header("WARC-Date") == "2025-12-01T10:00:00.123456Z"
    assert h.get_header("WARC-IP-Address") == "127.0.0.7"
    assert h.get_header("WARC-Payload-Digest") == sha1_digest(BODY)
    assert h.get_header("WARC-Identified-Payload-Type") == "text/html"
    assert h.get_header("WARC-Truncated") is None
    assert h.get_header("StreamCrawl-HTTP-Headers") is None


def test_request_metadata_and_conversions_refer_to_the_response() -> None:
    recs = records(page())
    by_type = {}
    for rec, body in recs:
        by_type.setdefault(rec.rec_type, []).append((rec, body))
    response_id = by_type["response"][0][0].rec_headers.get_header("WARC-Record-ID")
    request, _ = by_type["request"][0]
    assert request.rec_headers.get_header("WARC-Concurrent-To") == response_id
    assert request.http_headers.protocol == "GET"
    assert request.http_headers.statusline == "/artikel?id=7 HTTP/1.1"
    assert request.http_headers.get_header("User-Agent") == "StreamCrawl/0.1"
    meta, fields = by_type["metadata"][0]
    assert meta.rec_headers.get_header("WARC-Refers-To") == response_id
    text = fields.decode()
    assert "route: fast\r\n" in text and "language: de\r\n" in text and "language-score: 0.9800\r\n" in text
    assert f"simhash: {2**64 - 5:016x}\r\n" in text and "quality-flag: short_text\r\n" in text
    assert "http-headers: as received\r\n" in text
    conversions = {rec.rec_headers.get_header("Content-Type"): body for rec, body in by_type["conversion"]}
    assert conversions == {
        "text/plain; charset=utf-8": b"Hallo Guten Tag",
        "text/markdown; charset=utf-8": b"# Hallo\n\nGuten Tag",
    }


def test_a_truncated_body_is_flagged() -> None:
    rec = next(
        r for r, _ in records(page(truncated=True, truncated_parts=["raw"])) if r.rec_type == "response"
    )
    assert rec.rec_headers.get_header("WARC-Truncated") == "length"


def test_missing_headers_are_synthesized_and_say_so() -> None:
    p = page(response_headers=[], request_headers=[], http_version="", content_type="", charset="utf-8")
    built = build_page_records(p)
    assert built.headers_synthesized
    recs = records(p)
    response = next(r for r, _ in recs if r.rec_type == "response")
    assert response.rec_headers.get_header("StreamCrawl-HTTP-Headers") == "synthesized"
    assert response.http_headers.headers == [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Length", str(len(BODY))),
    ]
    request = next(r for r, _ in recs if r.rec_type == "request")
    assert request.http_headers.headers == [("Host", "de.example.test")]
    meta = next(b for r, b in recs if r.rec_type == "metadata")
    assert b"http-headers: synthesized\r\n" in meta


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([["Content-Length", "5"]], [("Content-Length", "5")]),  # right already: kept
        ([["content-length", "99"]], [("X-Crawler-content-length", "99"), ("Content-Length", "5")]),
        (
            [["Content-Length", "5"], ["Content-Length", "5"]],
            [("Content-Length", "5"), ("X-Crawler-Content-Length", "5")],
        ),
        (
            [["Bad Name", "x"], ["X-Ok", "a\r\nInjected: 1"]],
            [("X-Ok", "a  Injected: 1"), ("Content-Length", "5")],
        ),
    ],
)
def test_header_fixes(headers: list[list[str]], expected: list[tuple[str, str]]) -> None:
    assert fix_response_headers(headers, 5) == expected


def test_payload_type_is_sniffed() -> None:
    assert identify_payload_type(b"\xef\xbb\xbf  <HTML><body>", "application/octet-stream") == "text/html"
    assert identify_payload_type(b'<?xml version="1.0"?><html xmlns=...>', "application/xhtml+xml") == (
        "application/xhtml+xml"
    )
    assert identify_payload_type(b"%PDF-1.7", "application/pdf; x=y") == "application/pdf"
    assert identify_payload_type(b"", "") == "application/octet-stream"


def test_validators_and_dates() -> None:
    assert validators_of(RESPONSE_HEADERS) == ('"v1"', "Sun, 30 Nov 2025 08:00:00 GMT")
    assert validators_of([]) == (None, None)
    assert warc_date(0.5) == "1970-01-01T00:00:00.500000Z"
