"""Turning a routed page into a ProcessedPage with the fast (no-browser) extractor.

Shared by the fast extractor daemon and the rich renderer's fallback.
"""

from __future__ import annotations

import dataclasses
import time

from workers.errors import ExtractionError
from workers.extract import extract
from workers.messages import ProcessedPage, RoutedPage

__all__ = ["process_routed"]


def process_routed(routed: RoutedPage, *, route: str | None = None, fallback: bool = False) -> ProcessedPage:
    """Extract metadata and main content from the page's raw HTML.

    Raises ExtractionError when the stored body cannot be read or parsed.
    """
    page = routed.page
    base = ProcessedPage(
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
        skipped=page.skipped,
        batch=page.batch,
        rank=page.rank,
        ctx=page.ctx,
        request_id=page.request_id,
        fallback=fallback,
    )
    if page.skipped or not page.html_zstd:
        return base
    html = page.html_bytes()
    try:
        ex = extract(
            html,
            url=page.url,
            final_url=page.final_url,
            charset=page.charset,
            content_type=page.content_type,
            content_language=page.headers.get("content-language"),
        )
    except Exception as exc:  # any parser failure is this page's problem, not the worker's
        raise ExtractionError(f"extraction failed: {type(exc).__name__}: {exc}") from exc
    return dataclasses.replace(
        base,
        markdown=ex.markdown,
        title=ex.title,
        description=ex.description,
        lang=ex.lang,
        canonical_url=ex.canonical_url,
        published_time=ex.published_time,
        outlinks=list(ex.outlinks),
        word_count=ex.word_count,
        text_hash=ex.text_hash,
        simhash=ex.simhash,
    )
