"""WARC 1.1 records for one stored page: built with warcio, gzipped per record with ISA-L.

A page becomes this run of records, each its own gzip member (so each is readable alone
with one ranged GET), in this order:

``request``
    ``GET <path> HTTP/1.1`` and the request headers sent on the final hop.
``response``
    The status line and the response headers as received, then the body as kept (decoded;
    cut at the size cap with ``WARC-Truncated: length``). ``WARC-IP-Address`` is the peer,
    ``WARC-Payload-Digest``/``WARC-Block-Digest`` are SHA-1 in base32, and
    ``WARC-Identified-Payload-Type`` is the sniffed type of the body.
``metadata``
    ``application/warc-fields``: route, score, rules, languages, SimHash, text hash,
    truncation, quality signals and flags, redirects, robots directives.
``conversion`` (up to three)
    The main text (``text/plain``, what a WET record holds), the Markdown (``text/markdown``)
    and the rendered DOM of the rich path (``text/html``), each ``WARC-Refers-To`` the response.

HTTP headers follow StormCrawler's WARC module: the payload is stored decoded and de-chunked,
so ``Content-Encoding`` and ``Transfer-Encoding`` are kept as ``X-Crawler-Content-Encoding`` /
``X-Crawler-Transfer-Encoding``; a ``Content-Length`` that does not match the stored payload
becomes ``X-Crawler-Content-Length`` next to a recomputed ``Content-Length`` (added too when the
server sent none). HTTP/2 and HTTP/3 responses are written with an ``HTTP/1.1`` status line
(with the standard reason phrase: HTTP/2 has none). Header values lose CR/LF, names that are
not tokens are dropped.

When a page carries no recorded response headers (a fetcher that did not record them), the
response gets synthesized ``Content-Type``/``Content-Length`` headers and says so: the WARC
header ``StreamCrawl-HTTP-Headers: synthesized`` and ``http-headers: synthesized`` in the
metadata record; the same for missing request headers.

Why this way (measured on the 130 real pages of the readability set, ~198 KB of HTML each;
see bench/stage_storage.py): warcio's own gzip runs zlib at level 9 (7.8 ms CPU per page);
writing uncompressed through warcio and compressing each record with ISA-L (``isal``) at level 1
costs ~0.9 ms for 39 KB per page (zlib level 6: 2.9 ms, 33 KB). Digests are computed with one
``hashlib`` call each and handed to warcio, which otherwise re-reads the payload in 16 KB Python
chunks. FastWARC (Rust) was ~10% cheaper per page but its 2.x writer is a fresh rewrite and does
not add the payload digest itself; warcio is the reference implementation.
"""

from __future__ import annotations

import base64
import hashlib
import http
import io
import json
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from isal import isal_zlib
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from workers.errors import RecordRejected
from workers.messages import ProcessedPage, decompress_html

__all__ = [
    "GZIP_LEVEL",
    "PageRecords",
    "Record",
    "build_page_records",
    "fix_response_headers",
    "identify_payload_type",
    "sha1_digest",
    "validators_of",
    "warc_date",
    "warcinfo_record",
]

GZIP_LEVEL = 1
"""ISA-L level per record: 0.37 ms and ratio 5.2 per real page (zlib level 1: 1.35 ms, 5.1)."""
_GZIP_WBITS = 31  # gzip container
_HIDDEN = "X-Crawler-"
_PROBLEMATIC = frozenset({"content-encoding", "transfer-encoding"})
_TOKEN = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_SOFTWARE = "StreamCrawl"
_EMPTY_DIGEST = "sha1:3I42H3S6NNFQ2MSVX7XZKYAYSCX5QBYJ"  # sha1_digest(b"")
_MARKUP = re.compile(rb"<(?:!doctype\s+html|html|head|body|title|meta|div|p)[\s>/]", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class Record:
    """One gzipped WARC record of a page."""

    kind: str
    """WARC-Type."""
    part: str | None
    """Which page part it holds: ``html`` (the response), ``text``, ``markdown``, ``rendered``;
    None for the request and metadata records."""
    data: bytes
    """One complete gzip member."""
    digest: str
    """``sha1:<base32>`` of the record's payload (the HTTP body for the response)."""


@dataclass(frozen=True, slots=True)
class PageRecords:
    url_hash: str
    records: list[Record]
    headers_synthesized: bool
    mime_detected: str
    """The response's WARC-Identified-Payload-Type."""

    @property
    def size(self) -> int:
        return sum(len(r.data) for r in self.records)


def sha1_digest(*chunks: bytes) -> str:
    """``sha1:<base32>``, as WARC digests and Common Crawl's ``content_digest`` are written."""
    h = hashlib.sha1()
    for chunk in chunks:
        h.update(chunk)
    return "sha1:" + base64.b32encode(h.digest()).decode("ascii")


def warc_date(epoch: float) -> str:
    """WARC 1.1 date: UTC, ISO 8601, microseconds."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _record_id() -> str:
    return f"<urn:uuid:{uuid.uuid4()}>"


def _field(value: object) -> str:
    """A header or warc-fields value on one line."""
    return str(value).replace("\r", " ").replace("\n", " ")


def _clean_headers(pairs: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for pair in pairs:
        if len(pair) != 2:
            continue
        name, value = str(pair[0]).strip(), _field(pair[1])
        if _TOKEN.match(name):
            out.append((name, value))
    return out


def fix_response_headers(headers: Iterable[Sequence[str]], payload_length: int) -> list[tuple[str, str]]:
    """Headers as received, made truthful for a decoded, de-chunked payload (StormCrawler's rule)."""
    out: list[tuple[str, str]] = []
    length_ok = False
    for name, value in _clean_headers(headers):
        lower = name.lower()
        if lower in _PROBLEMATIC:
            out.append((_HIDDEN + name, value))
        elif lower == "content-length":
            if value.strip() == str(payload_length) and not length_ok:
                out.append((name, value))
                length_ok = True
            else:
                out.append((_HIDDEN + name, value))
        else:
            out.append((name, value))
    if not length_ok:
        out.append(("Content-Length", str(payload_length)))
    return out


def validators_of(headers: Iterable[Sequence[str]]) -> tuple[str | None, str | None]:
    """(ETag, Last-Modified) of a response, for a conditional recrawl."""
    etag = modified = None
    for name, value in _clean_headers(headers):
        lower = name.lower()
        if lower == "etag" and etag is None:
            etag = value.strip()
        elif lower == "last-modified" and modified is None:
            modified = value.strip()
    return etag or None, modified or None


def identify_payload_type(body: bytes, declared: str) -> str:
    """The body's type by a look at its first bytes (``WARC-Identified-Payload-Type``).

    Markup is ``text/html`` (``application/xhtml+xml`` when it opens with an XML declaration);
    otherwise the declared type's MIME part, ``application/octet-stream`` if none."""
    mime = declared.split(";", 1)[0].strip().lower()
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n")
    if _MARKUP.search(head):
        return "application/xhtml+xml" if head[:5].lower() == b"<?xml" and "xhtml" in mime else "text/html"
    return mime or "application/octet-stream"


def _status_line(page: ProcessedPage) -> tuple[str, str]:
    protocol = (
        page.http_version.upper() if page.http_version.upper() in ("HTTP/1.0", "HTTP/1.1") else "HTTP/1.1"
    )
    reason = _field(page.status_reason).strip()
    if not reason:
        try:
            reason = http.HTTPStatus(page.status).phrase
        except ValueError:
            reason = ""
    return protocol, f"{page.status} {reason}".strip()


def _declared_type(page: ProcessedPage) -> str:
    if page.content_type:
        return page.content_type
    return f"text/html; charset={page.charset}" if page.charset else "text/html"


def _response_headers(page: ProcessedPage, payload_length: int) -> tuple[list[tuple[str, str]], bool]:
    if page.response_headers:
        return fix_response_headers(page.response_headers, payload_length), False
    return [("Content-Type", _field(_declared_type(page))), ("Content-Length", str(payload_length))], True


def _request_head(page: ProcessedPage) -> tuple[str, list[tuple[str, str]], bool]:
    parts = urlsplit(page.final_url or page.url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    headers = _clean_headers(page.request_headers)
    if headers:
        return target, headers, False
    return target, [("Host", parts.netloc or page.host)], True


def _gzip(raw: bytes) -> bytes:
    return isal_zlib.compress(raw, GZIP_LEVEL, _GZIP_WBITS)


def _write(record: Any) -> bytes:
    """One record serialised by warcio (uncompressed), then gzipped as its own member."""
    buf = io.BytesIO()
    WARCWriter(buf, gzip=False, warc_version="1.1").write_record(record)
    return _gzip(buf.getvalue())


def _metadata_fields(page: ProcessedPage, synthesized: bool) -> bytes:
    fields: list[tuple[str, object]] = [
        ("route", page.route),
        ("score", page.score),
        *(("rule", r) for r in page.rules),
        ("language", page.language or ""),
        ("language-score", "" if page.language_score is None else f"{page.language_score:.4f}"),
        ("declared-language", page.lang or ""),
        ("simhash", f"{page.simhash & 0xFFFF_FFFF_FFFF_FFFF:016x}"),
        ("text-hash", page.text_hash),
        ("word-count", page.word_count),
        ("truncated", ",".join(page.truncated_parts) or ("raw" if page.truncated else "")),
        ("body-bytes", page.body_bytes or ""),
        *(("quality-flag", f) for f in page.quality_flags),
        ("quality", _quality_json(page.quality) if page.quality else ""),
        *(("redirect", u) for u in page.redirects),
        *(("robots", r) for r in page.robots),
        ("outlinks", len(page.outlinks)),
        ("outlinks-total", page.outlinks_total or ""),
        ("fallback", "true" if page.fallback else ""),
        ("batch", page.batch or ""),
        ("http-headers", "synthesized" if synthesized else "as received"),
    ]
    return "".join(f"{name}: {_field(value)}\r\n" for name, value in fields if value != "").encode("utf-8")


def _quality_json(quality: dict[str, Any]) -> str:
    return json.dumps(quality, sort_keys=True, separators=(",", ":"), default=str)


def build_page_records(page: ProcessedPage) -> PageRecords:
    """The page's WARC records (see the module doc). Raises RecordRejected on an undecodable body."""
    try:
        body = decompress_html(page.html_zstd) if page.html_zstd else b""
        rendered = decompress_html(page.rendered_html_zstd) if page.rendered_html_zstd else b""
    except Exception as exc:  # MessageDecodeError: a corrupt body is never stored
        raise RecordRejected(f"page body is not valid zstd: {exc}") from exc
    writer = WARCWriter(None, gzip=False, warc_version="1.1")
    uri = page.final_url or page.url
    date = warc_date(page.fetched_at)
    response_id, request_id = _record_id(), _record_id()

    target, req_headers, req_synth = _request_head(page)
    request = writer.create_warc_record(
        uri,
        "request",
        payload=io.BytesIO(b""),
        length=0,
        http_headers=StatusAndHeaders(f"GET {target} HTTP/1.1", req_headers, is_http_request=True),
        warc_headers_dict={
            "WARC-Payload-Digest": _EMPTY_DIGEST,
            "WARC-Type": "request",
            "WARC-Target-URI": uri,
            "WARC-Record-ID": request_id,
            "WARC-Date": date,
            "WARC-Concurrent-To": response_id,
            **({"StreamCrawl-HTTP-Headers": "synthesized"} if req_synth else {}),
        },
    )

    resp_headers, synthesized = _response_headers(page, len(body))
    protocol, status = _status_line(page)
    http_head = StatusAndHeaders(status, resp_headers, protocol=protocol)
    http_head.compute_headers_buffer(None)  # the exact bytes warcio writes: digest them
    payload_digest = sha1_digest(body)
    warc_headers = {
        "WARC-Type": "response",
        "WARC-Target-URI": uri,
        "WARC-Record-ID": response_id,
        "WARC-Date": date,
        "WARC-Payload-Digest": payload_digest,
        "WARC-Block-Digest": sha1_digest(http_head.headers_buff, body),
        "WARC-Identified-Payload-Type": (mime := identify_payload_type(body, _declared_type(page))),
    }
    if page.peer_ip:
        warc_headers["WARC-IP-Address"] = _field(page.peer_ip)
    if page.truncated or "raw" in page.truncated_parts:
        warc_headers["WARC-Truncated"] = "length"
    if synthesized:
        warc_headers["StreamCrawl-HTTP-Headers"] = "synthesized"
    response = writer.create_warc_record(
        uri,
        "response",
        payload=io.BytesIO(body),
        length=len(body),
        http_headers=http_head,
        warc_headers_dict=warc_headers,
    )

    records = [
        Record("request", None, _write(request), _EMPTY_DIGEST),
        Record("response", "html", _write(response), payload_digest),
    ]
    contents: list[tuple[str, str | None, bytes, str]] = [
        ("metadata", None, _metadata_fields(page, synthesized or req_synth), "application/warc-fields"),
        ("conversion", "text", page.text.encode("utf-8", "replace"), "text/plain; charset=utf-8"),
        ("conversion", "markdown", page.markdown.encode("utf-8", "replace"), "text/markdown; charset=utf-8"),
        ("conversion", "rendered", rendered, "text/html"),
    ]
    for kind, part, data, content_type in contents:
        if data or kind == "metadata":
            digest = sha1_digest(data)
            rec = _content_record(writer, uri, kind, data, content_type, date, response_id, digest)
            records.append(Record(kind, part, _write(rec), digest))
    return PageRecords(page.url_hash, records, synthesized, mime)


def _content_record(
    writer: WARCWriter,
    uri: str,
    kind: str,
    data: bytes,
    content_type: str,
    date: str,
    refers_to: str,
    digest: str,
) -> Any:
    return writer.create_warc_record(
        uri,
        kind,
        payload=io.BytesIO(data),
        length=len(data),
        warc_content_type=content_type,
        warc_headers_dict={
            "WARC-Type": kind,
            "WARC-Target-URI": uri,
            "WARC-Record-ID": _record_id(),
            "WARC-Date": date,
            "WARC-Refers-To": refers_to,
            "WARC-Block-Digest": digest,
            "WARC-Payload-Digest": digest,
        },
    )


def warcinfo_record(*, now: float, filename: str, software_version: str = "") -> bytes:
    """The gzipped ``warcinfo`` record that opens every WARC object."""
    writer = WARCWriter(None, gzip=False, warc_version="1.1")
    info = {
        "software": f"{_SOFTWARE} {software_version}".strip(),
        "format": "WARC File Format 1.1",
        "conformsTo": "https://iipc.github.io/warc-specifications/specifications/warc-format/warc-1.1/",
        "robots": "obey",
        "description": "pages stored by the StreamCrawl storage writer; one gzip member per record",
    }
    record = writer.create_warcinfo_record(filename, info)
    record.rec_headers.replace_header("WARC-Date", warc_date(now))
    return _write(record)
