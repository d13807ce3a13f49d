"""The message contract: versioned msgpack records carried between stages.

Every record is a msgpack map ``{"v": SCHEMA_VERSION, "t": <type name>, ...fields}``.
``encode(msg)`` produces bytes; ``decode(bytes, MessageType)`` returns the dataclass or
raises :class:`~workers.errors.MessageDecodeError` — for truncated or invalid msgpack,
invalid zstd, an unknown version or type, and missing or mistyped fields. Callers
dead-letter on that error; it never crashes a worker.

HTML travels zstd-compressed (``html_zstd``). Pages above ``max_page_bytes`` (5 MB by
default) are **truncated and flagged**: the first ``max_page_bytes`` bytes are kept,
``truncated=True`` and ``body_bytes`` records the size the server announced or sent.
See ARCHITECTURE.md for why this beats a claim check here.

Kafka headers (not the payload) carry the trace id and the attempt number.

**Versions.** ``encode`` writes ``SCHEMA_VERSION`` (2); ``decode`` reads every version in
``READABLE_VERSIONS``. Version 2 only *adds* fields, each with a default, so a version-1
record decodes into the same dataclass with the new fields at their defaults:

* ``CrawlContext`` (``ctx`` on every page message): depth, seed host, where the URL came from
  and the batch's ``Scope`` — fixed when the batch is published, carried hop to hop.
* ``CrawlRequest``: ``kind`` (page, sitemap, robots), ``not_before`` (re-queued work),
  ``etag``/``last_modified`` (conditional recrawl), ``request_id``.
* ``RawPage``/``ProcessedPage``: the response as received (status reason, every header in
  order, the request headers sent, the peer IP) for WARC; ``ProcessedPage`` also plain
  ``text``, detected language, quality signals, robots directives and nofollow links.
* ``StoredPage``: the page's ``outcome`` (stored, unchanged, skipped + reason) and its
  outlinks, for the discovery stage.
"""

from __future__ import annotations

import dataclasses
import threading
import types
import typing
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import msgpack
import zstandard

from workers.errors import MessageDecodeError

__all__ = [
    "READABLE_VERSIONS",
    "SCHEMA_VERSION",
    "CrawlContext",
    "CrawlRequest",
    "DeadLetter",
    "Message",
    "ProcessedPage",
    "RawPage",
    "RoutedPage",
    "Scope",
    "StoredPage",
    "compress_html",
    "decode",
    "decompress_html",
    "encode",
    "make_headers",
    "message_type",
    "new_trace_id",
    "peek",
    "read_headers",
    "truncate_body",
]

SCHEMA_VERSION = 2
READABLE_VERSIONS = frozenset({1, 2})
TRACE_HEADER = "trace_id"
ATTEMPT_HEADER = "attempt"
# Hard ceiling on a decompressed body, whatever the settings say: a zstd bomb must not OOM a worker.
_MAX_DECOMPRESSED = 64 * 1024 * 1024

_local = threading.local()


def _compressor() -> zstandard.ZstdCompressor:
    c: zstandard.ZstdCompressor | None = getattr(_local, "cctx", None)
    if c is None:
        c = _local.cctx = zstandard.ZstdCompressor(level=3)
    return c


def _decompressor() -> zstandard.ZstdDecompressor:
    d: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor()
    return d


def compress_html(body: bytes) -> bytes:
    return _compressor().compress(body)


def decompress_html(data: bytes) -> bytes:
    """Decompress a zstd body; invalid data raises MessageDecodeError."""
    try:
        return _decompressor().decompress(data, max_output_size=_MAX_DECOMPRESSED)
    except zstandard.ZstdError as exc:
        raise MessageDecodeError(f"invalid zstd body: {exc}") from exc


def truncate_body(body: bytes, max_bytes: int) -> tuple[bytes, bool]:
    """Apply the size policy: keep the first ``max_bytes`` bytes and flag the cut."""
    if len(body) <= max_bytes:
        return body, False
    return body[:max_bytes], True


def new_trace_id() -> str:
    return uuid.uuid4().hex


def make_headers(trace_id: str, attempt: int = 1) -> list[tuple[str, bytes]]:
    return [(TRACE_HEADER, trace_id.encode()), (ATTEMPT_HEADER, str(attempt).encode())]


def read_headers(headers: Sequence[tuple[str, bytes]] | None) -> tuple[str, int]:
    """(trace id, attempt) from Kafka headers; tolerant of absent or garbled values."""
    trace, attempt = "", 1
    for key, value in headers or ():
        if key == TRACE_HEADER and value:
            trace = value.decode("ascii", "replace")
        elif key == ATTEMPT_HEADER and value:
            try:
                attempt = max(1, int(value))
            except ValueError:
                attempt = 1
    return trace or new_trace_id(), attempt


@dataclass(slots=True, kw_only=True)
class Message:
    """Base of every message type. Subclasses are plain dataclasses of msgpack-able fields."""

    TYPE: ClassVar[str] = ""


@dataclass(slots=True, kw_only=True)
class Scope(Message):
    """What a batch may crawl beyond its listed URLs; fixed when the batch is published."""

    TYPE: ClassVar[str] = "scope"
    mode: str = "host"
    """``host`` (the seed's host), ``domain`` (the seed's registered domain) or ``any``."""
    max_depth: int = 0
    """Link hops from a listed URL; 0 = only the listed URLs."""
    max_pages_per_host: int | None = None
    max_pages: int | None = None
    """URLs the batch may request in all (listed + discovered)."""
    include: list[str] = field(default_factory=list)
    """Regular expressions; when given, a discovered URL must match one."""
    exclude: list[str] = field(default_factory=list)
    """Regular expressions; a discovered URL matching one is dropped."""
    follow_nofollow: bool = False


@dataclass(slots=True, kw_only=True)
class CrawlContext(Message):
    """Where a URL sits in its batch's crawl: carried from request to stored page."""

    TYPE: ClassVar[str] = "crawl_context"
    depth: int = 0
    seed: str = ""
    """Host the scope is measured from (the listed URL's host, or where it redirected)."""
    source: str = "list"
    """``list``, ``link`` or ``sitemap``."""
    parent: str | None = None
    """url_hash of the page (or sitemap) the URL was found on."""
    scope: Scope | None = None


@dataclass(slots=True, kw_only=True)
class CrawlRequest(Message):
    """One URL to fetch; keyed by host on ``crawl.request``."""

    TYPE: ClassVar[str] = "crawl_request"
    url: str
    url_hash: str
    host: str
    requested_at: float
    batch: str | None = None
    """The crawl batch (frontier partition key or CLI run id) this URL belongs to."""
    rank: int | None = None
    recrawl: bool = False
    kind: str = "page"
    """``page``; ``sitemap`` (a sitemap or sitemap index to read for URLs); ``robots`` (read
    robots.txt only for its ``Sitemap:`` lines)."""
    ctx: CrawlContext | None = None
    not_before: float = 0.0
    """Epoch seconds before which the request must not be fetched (a re-queued retry, a
    paused host)."""
    requeues: int = 0
    """How many times the ingestor put this request back with a delay."""
    etag: str | None = None
    """Validators of the stored copy: a recrawl sends If-None-Match / If-Modified-Since."""
    last_modified: str | None = None
    request_id: str = ""
    """Identity of this admission of the URL to the batch (redeliveries keep it)."""


@dataclass(slots=True, kw_only=True)
class RawPage(Message):
    """A fetched page as the ingestor saw it."""

    TYPE: ClassVar[str] = "raw_page"
    url: str
    url_hash: str
    host: str
    final_url: str
    status: int
    content_type: str
    html_zstd: bytes
    """The body (HTML), zstd-compressed; empty when the page was skipped."""
    content_hash: str
    """blake2b-128 of the body as kept (a truncated body is never downloaded past the cap)."""
    fetched_at: float
    body_bytes: int = 0
    truncated: bool = False
    charset: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    redirects: list[str] = field(default_factory=list)
    http_version: str = ""
    skipped: str | None = None
    """Why the body was not kept (e.g. a non-HTML content type, robots); no page is stored."""
    batch: str | None = None
    rank: int | None = None
    kind: str = "page"
    ctx: CrawlContext | None = None
    status_reason: str = ""
    response_headers: list[list[str]] = field(default_factory=list)
    """Every response header as received, in order, as [name, value] pairs."""
    request_headers: list[list[str]] = field(default_factory=list)
    """The request headers sent for the final hop, as [name, value] pairs."""
    peer_ip: str | None = None
    """The IP address the final hop connected to."""
    request_id: str = ""

    def html_bytes(self) -> bytes:
        return decompress_html(self.html_zstd) if self.html_zstd else b""


@dataclass(slots=True, kw_only=True)
class RoutedPage(Message):
    """A raw page with the router's verdict."""

    TYPE: ClassVar[str] = "routed_page"
    page: RawPage
    route: str
    """``fast`` or ``rich``."""
    score: int
    rules: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class ProcessedPage(Message):
    """An extracted page, the same shape from the fast and the rich path."""

    TYPE: ClassVar[str] = "processed_page"
    url: str
    url_hash: str
    host: str
    final_url: str
    status: int
    route: str
    score: int
    fetched_at: float
    processed_at: float
    content_hash: str
    html_zstd: bytes
    markdown: str = ""
    title: str | None = None
    description: str | None = None
    lang: str | None = None
    canonical_url: str | None = None
    published_time: str | None = None
    outlinks: list[str] = field(default_factory=list)
    word_count: int = 0
    text_hash: str = ""
    simhash: int = 0
    rules: list[str] = field(default_factory=list)
    rendered_html_zstd: bytes | None = None
    fallback: bool = False
    """True when the rich path failed and the fast extractor's result was used instead."""
    truncated: bool = False
    skipped: str | None = None
    batch: str | None = None
    rank: int | None = None
    ctx: CrawlContext | None = None
    request_id: str = ""
    text: str = ""
    """The main content as plain text (what a WET record holds)."""
    language: str | None = None
    """Detected language code of the main text (``lang`` is what the page declares)."""
    language_score: float | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    """Extraction signals (text length vs visible text, link density, chosen block, method)."""
    quality_flags: list[str] = field(default_factory=list)
    """Why the extraction looks implausible; empty when it looks fine."""
    robots: list[str] = field(default_factory=list)
    """Robots directives that apply to us (meta robots + X-Robots-Tag): noindex, nofollow, …"""
    outlinks_nofollow: list[str] = field(default_factory=list)
    """The subset of ``outlinks`` marked rel=nofollow."""
    outlinks_total: int = 0
    """Links on the page before the per-page cap."""
    truncated_parts: list[str] = field(default_factory=list)
    """Which parts were cut to their size cap: raw, rendered, markdown, text."""
    content_type: str = ""
    charset: str | None = None
    body_bytes: int = 0
    http_version: str = ""
    status_reason: str = ""
    response_headers: list[list[str]] = field(default_factory=list)
    request_headers: list[list[str]] = field(default_factory=list)
    peer_ip: str | None = None
    redirects: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class StoredPage(Message):
    """Emitted on ``storage.saved`` once a page's row and objects are written."""

    TYPE: ClassVar[str] = "stored_page"
    url: str
    url_hash: str
    final_url: str
    status: int
    route: str
    stored_at: float
    html_key: str | None = None
    markdown_key: str | None = None
    rendered_key: str | None = None
    batch: str | None = None
    rank: int | None = None
    outcome: str = "stored"
    """``stored``; ``unchanged`` (a 304 to a conditional recrawl); ``skipped`` (see ``reason``)."""
    reason: str | None = None
    """Why a page was skipped: non_html, robots, noindex, binary, …"""
    ctx: CrawlContext | None = None
    request_id: str = ""
    host: str = ""
    outlinks: list[str] = field(default_factory=list)
    outlinks_nofollow: list[str] = field(default_factory=list)
    robots: list[str] = field(default_factory=list)


@dataclass(slots=True, kw_only=True)
class DeadLetter(Message):
    """A record a stage could not handle, with why and where it came from."""

    TYPE: ClassVar[str] = "dead_letter"
    payload: bytes
    """The original record value, byte for byte."""
    source_topic: str
    partition: int
    offset: int
    stage: str
    error_class: str
    error_message: str
    attempt: int
    first_failure_at: float
    last_failure_at: float
    key: bytes | None = None
    url: str | None = None
    url_hash: str | None = None
    batch: str | None = None
    rank: int | None = None
    payload_truncated: bool = False
    """``payload`` is a cut copy (the original was too large to fit in a letter): do not replay it."""


_TYPES: dict[str, type[Message]] = {
    cls.TYPE: cls
    for cls in (CrawlRequest, RawPage, RoutedPage, ProcessedPage, StoredPage, DeadLetter, Scope, CrawlContext)
}
M = TypeVar("M", bound=Message)


def _to_wire(msg: Message) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(msg):
        value = getattr(msg, f.name)
        out[f.name] = _to_wire(value) if isinstance(value, Message) else value
    return out


def encode(msg: Message) -> bytes:
    body = _to_wire(msg)
    body["v"] = SCHEMA_VERSION
    body["t"] = msg.TYPE
    packed: bytes = msgpack.packb(body, use_bin_type=True)
    return packed


# Per type: [(field name, accepted runtime types, required, nested message type)].
_Spec = list[tuple[str, tuple[type, ...], bool, "type[Message] | None"]]
_SPECS: dict[type[Message], _Spec] = {}


def _runtime_types(annotation: Any) -> tuple[tuple[type, ...], type[Message] | None]:
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        accepted: tuple[type, ...] = ()
        nested = None
        for arg in typing.get_args(annotation):
            t, n = _runtime_types(arg)
            accepted += t
            nested = nested or n
        return accepted, nested
    if annotation is type(None):
        return (type(None),), None
    if origin is not None:
        return (origin,), None
    if isinstance(annotation, type) and issubclass(annotation, Message):
        return (dict,), annotation
    if annotation is float:
        return (float, int), None
    if annotation is int:
        return (int,), None
    return (annotation,), None


def _spec(cls: type[Message]) -> _Spec:
    spec = _SPECS.get(cls)
    if spec is None:
        hints = typing.get_type_hints(cls)
        spec = []
        for f in dataclasses.fields(cls):
            accepted, nested = _runtime_types(hints[f.name])
            required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            spec.append((f.name, accepted, required, nested))
        _SPECS[cls] = spec
    return spec


def _from_wire(cls: type[M], body: dict[str, Any]) -> M:
    kwargs: dict[str, Any] = {}
    for name, accepted, required, nested in _spec(cls):
        if name not in body:
            if required:
                raise MessageDecodeError(f"{cls.TYPE}: missing field {name!r}")
            continue
        value = body[name]
        if not isinstance(value, accepted) or (isinstance(value, bool) and bool not in accepted):
            raise MessageDecodeError(
                f"{cls.TYPE}: field {name!r} has type {type(value).__name__}, "
                f"expected {'/'.join(t.__name__ for t in accepted)}"
            )
        if nested is not None and isinstance(value, dict):
            value = _from_wire(nested, value)
        kwargs[name] = value
    return cls(**kwargs)


def decode(data: bytes | None, cls: type[M]) -> M:
    """Decode a record value into ``cls``; any defect raises MessageDecodeError."""
    if not data:
        raise MessageDecodeError(f"{cls.TYPE}: empty record value")
    try:
        body = msgpack.unpackb(data, raw=False, strict_map_key=True)
    except (ValueError, msgpack.UnpackException, TypeError) as exc:
        raise MessageDecodeError(f"{cls.TYPE}: invalid msgpack: {exc}") from exc
    if not isinstance(body, dict):
        raise MessageDecodeError(f"{cls.TYPE}: expected a msgpack map, got {type(body).__name__}")
    version = body.get("v")
    if version not in READABLE_VERSIONS or isinstance(version, bool):
        readable = ", ".join(map(str, sorted(READABLE_VERSIONS)))
        raise MessageDecodeError(
            f"{cls.TYPE}: unknown schema version {version!r} (this build reads {readable})"
        )
    kind = body.get("t")
    if kind != cls.TYPE:
        raise MessageDecodeError(f"expected message type {cls.TYPE!r}, got {kind!r}")
    return _from_wire(cls, body)


def peek(data: bytes | None) -> dict[str, Any]:
    """Best-effort look at a record's url/url_hash/batch/rank, for dead letters. Never raises."""
    try:
        body = msgpack.unpackb(data or b"", raw=False)
    except Exception:  # noqa: BLE001 - a peek at garbage returns nothing
        return {}
    if not isinstance(body, dict):
        return {}
    page = body.get("page")
    inner: dict[str, Any] = page if isinstance(page, dict) else body
    out: dict[str, Any] = {}
    for k, t in (("url", str), ("url_hash", str), ("batch", str), ("rank", int)):
        v = inner.get(k, body.get(k))
        if isinstance(v, t):
            out[k] = v
    return out


def message_type(name: str) -> type[Message]:
    return _TYPES[name]
