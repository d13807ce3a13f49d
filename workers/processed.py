"""Building a ProcessedPage from a RoutedPage: the one place both paths (the fast extractor
and the rich renderer) copy the raw page's fields forward, and cap what they add.

Everything the storage path needs from the RawPage travels on: identity (url, url_hash,
host, final_url, status), the crawl context (``ctx``, ``batch``, ``rank``, ``request_id``),
and the response as received for WARC (``content_type``, ``charset``, ``body_bytes``,
``http_version``, ``status_reason``, ``response_headers``, ``request_headers``,
``peer_ip``, ``redirects``). A 304, a skipped page or a page without a body becomes this
base alone ("passes untouched").
"""

from __future__ import annotations

import dataclasses
import time
from typing import Any

from workers.extract import Extracted
from workers.messages import ProcessedPage, RoutedPage
from workers.settings import ExtractorSettings

__all__ = ["cap_utf8", "processed_base", "with_extraction", "x_robots_tags"]


def processed_base(routed: RoutedPage, *, route: str | None = None, fallback: bool = False) -> ProcessedPage:
    """The ProcessedPage fields that come from the routed page (no extraction yet)."""
    page = routed.page
    return ProcessedPage(
        url=page.url,
        url_hash=page.url_hash,
        host=page.host,
        final_url=page.final_url,
        status=page.status,
        route=route or routed.route,
        score=routed.score,
        rules=list(routed.rules),
        fetched_at=page.fetched_at,
        processed_at=time.time(),
        content_hash=page.content_hash,
        html_zstd=page.html_zstd,
        truncated=page.truncated,
        truncated_parts=["raw"] if page.truncated else [],
        skipped=page.skipped,
        batch=page.batch,
        rank=page.rank,
        ctx=page.ctx,
        request_id=page.request_id,
        fallback=fallback,
        content_type=page.content_type,
        charset=page.charset,
        body_bytes=page.body_bytes,
        http_version=page.http_version,
        status_reason=page.status_reason,
        response_headers=[list(h) for h in page.response_headers],
        request_headers=[list(h) for h in page.request_headers],
        peer_ip=page.peer_ip,
        redirects=list(page.redirects),
    )


def x_robots_tags(routed: RoutedPage) -> list[str]:
    """Every X-Robots-Tag value of the response (all headers when the ingestor sent them)."""
    page = routed.page
    if page.response_headers:
        return [h[1] for h in page.response_headers if len(h) == 2 and h[0].lower() == "x-robots-tag"]
    value = page.headers.get("x-robots-tag")
    return [value] if value else []


def cap_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (on a character boundary); (text, cut?)."""
    if len(text) * 4 <= max_bytes:  # cannot be over: no UTF-8 encoding is needed
        return text, False
    data = text.encode("utf-8", "surrogatepass")
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode("utf-8", "ignore"), True


def with_extraction(
    base: ProcessedPage,
    ex: Extracted,
    limits: ExtractorSettings,
    *,
    markdown: str | None = None,
    text: str | None = None,
    **overrides: Any,
) -> ProcessedPage:
    """``base`` with the extraction's fields, Markdown and text capped (cuts listed in
    ``truncated_parts``, as is an outlink list cut to its cap). ``markdown``/``text`` replace
    the extraction's own (the rich path's whole-body text); ``overrides`` set other fields."""
    markdown, markdown_cut = cap_utf8(
        ex.markdown if markdown is None else markdown, limits.max_markdown_bytes
    )
    text, text_cut = cap_utf8(ex.text if text is None else text, limits.max_text_bytes)
    parts = list(base.truncated_parts) + ["markdown"] * markdown_cut + ["text"] * text_cut
    if ex.outlinks_total > len(ex.outlinks):
        parts.append("outlinks")
    fields: dict[str, Any] = {
        "markdown": markdown,
        "text": text,
        "title": ex.title,
        "description": ex.description,
        "lang": ex.lang,
        "canonical_url": ex.canonical_url,
        "published_time": ex.published_time,
        "outlinks": ex.outlinks,
        "outlinks_nofollow": ex.outlinks_nofollow,
        "outlinks_total": ex.outlinks_total,
        "robots": ex.robots,
        "word_count": ex.word_count,
        "text_hash": ex.text_hash,
        "simhash": ex.simhash,
        "language": ex.language,
        "language_score": ex.language_score,
        "quality": ex.quality,
        "quality_flags": ex.quality_flags,
        "truncated_parts": parts,
    }
    fields.update(overrides)
    return dataclasses.replace(base, **fields)
