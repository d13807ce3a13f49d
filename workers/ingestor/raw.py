"""Assemble the RawPage of a finished fetch: the body digested, the response as received.

Every RawPage carries what the request carried forward unchanged (``ctx``, ``batch``,
``rank``, ``request_id``, ``kind``) and, for WARC, the final hop's status reason, every
response header in order, the request headers sent and the peer address. Bodies of at
least 16 KiB are compressed and hashed on a worker thread (zstd and blake2b release the
GIL): together they cost ~4x a whole aiohttp request in CPU for a 32 KB page, and a
multi-MB page would stall every connection of the event loop for milliseconds; below that
size the thread hand-off costs more than it saves.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any

from workers.ingestor.charset import detect_charset, media_type
from workers.ingestor.exchange import Hop
from workers.messages import CrawlRequest, RawPage, compress_html

__all__ = ["EMPTY_HASH", "Fetched", "build_page", "digest", "skipped_page"]

_OFFLOAD_BYTES = 16 * 1024
EMPTY_HASH = hashlib.blake2b(b"", digest_size=16).hexdigest()


@dataclass(slots=True)
class Fetched:
    """A finished redirect chain: the final hop, its URL and the URLs that redirected."""

    hop: Hop
    url: str
    chain: list[str] = field(default_factory=list)
    waited: float = 0.0
    network: float = 0.0

    @property
    def status(self) -> int:  # RobotsAnswer
        return self.hop.status

    @property
    def body(self) -> bytes:  # RobotsAnswer
        return self.hop.body.data if self.hop.body is not None else b""


def digest(data: bytes) -> tuple[bytes, str]:
    """(zstd-compressed body, blake2b-128 hex of the body)."""
    return (compress_html(data) if data else b""), hashlib.blake2b(data, digest_size=16).hexdigest()


async def build_page(
    request: CrawlRequest,
    fetched: Fetched,
    *,
    digesters: concurrent.futures.Executor | None,
    charset: bool = True,
) -> RawPage:
    """The RawPage of ``fetched`` (``charset=False``: no charset detection, e.g. sitemaps)."""
    hop = fetched.hop
    body = hop.body
    data = body.data if body is not None else b""
    if len(data) >= _OFFLOAD_BYTES:
        loop = asyncio.get_running_loop()
        html_zstd, content_hash = await loop.run_in_executor(digesters, digest, data)
    elif data:
        html_zstd, content_hash = digest(data)
    else:
        html_zstd, content_hash = b"", EMPTY_HASH
    if body is not None:
        content_type, skipped, size, truncated = body.content_type, body.skipped, body.size, body.truncated
        detected = detect_charset(data, body.header_charset) if charset and data and not skipped else None
    else:  # a 304, or a non-2xx status returned as it is
        content_type = media_type(hop.headers.get("content-type"))[0]
        skipped, size, truncated, detected = None, 0, False, None
    timings = {"wait": fetched.waited * 1000, "total": fetched.network * 1000, **hop.timings}
    return RawPage(
        **_carried(request),
        final_url=fetched.url,
        status=hop.status,
        content_type=content_type,
        html_zstd=html_zstd,
        content_hash=content_hash,
        fetched_at=time.time(),
        body_bytes=size,
        truncated=truncated,
        charset=detected,
        headers=hop.headers,
        timings=timings,
        redirects=fetched.chain,
        http_version=hop.http_version,
        skipped=skipped,
        status_reason=hop.reason,
        response_headers=hop.response_headers,
        request_headers=hop.request_headers,
        peer_ip=hop.peer_ip,
    )


def skipped_page(request: CrawlRequest, url: str, chain: list[str], reason: str) -> RawPage:
    """A RawPage for a request that was not fetched (``status`` 0, no body), e.g. robots."""
    return RawPage(
        **_carried(request),
        final_url=url,
        status=0,
        content_type="",
        html_zstd=b"",
        content_hash=EMPTY_HASH,
        fetched_at=time.time(),
        redirects=chain,
        skipped=reason,
    )


def _carried(request: CrawlRequest) -> dict[str, Any]:
    """What every RawPage copies from its request, unchanged."""
    return {
        "url": request.url,
        "url_hash": request.url_hash,
        "host": request.host,
        "batch": request.batch,
        "rank": request.rank,
        "kind": request.kind,
        "ctx": request.ctx,
        "request_id": request.request_id,
    }
