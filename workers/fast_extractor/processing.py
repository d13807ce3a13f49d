"""Turning a routed page into a ProcessedPage with the fast (no-browser) extractor.

Shared by the fast extractor's extraction processes and the rich renderer's fallback.
"""

from __future__ import annotations

from workers.errors import ExtractionError
from workers.extract import extract
from workers.extract.robots import product_token
from workers.messages import ProcessedPage, RoutedPage
from workers.processed import processed_base, with_extraction, x_robots_tags
from workers.settings import ExtractorSettings

__all__ = ["process_routed"]

_DEFAULTS = ExtractorSettings.model_construct()


def process_routed(
    routed: RoutedPage,
    *,
    route: str | None = None,
    fallback: bool = False,
    settings: ExtractorSettings | None = None,
    user_agent: str = "StreamCrawl",
) -> ProcessedPage:
    """Extract metadata, main content (Markdown and text), language, robots directives,
    outlinks and quality signals from the page's raw HTML, within ``settings``' bounds.

    A skipped page or one without a body (a 304) is returned as the base alone.
    Raises ExtractionError when the stored body cannot be read or parsed.
    """
    limits = settings or _DEFAULTS
    page = routed.page
    base = processed_base(routed, route=route, fallback=fallback)
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
            x_robots_tags=x_robots_tags(routed),
            robots_token=product_token(user_agent),
            max_outlinks=limits.max_outlinks,
            max_nodes=limits.max_nodes,
            max_depth=limits.max_depth,
        )
    except Exception as exc:  # any parser failure is this page's problem, not the worker's
        raise ExtractionError(f"extraction failed: {type(exc).__name__}: {exc}") from exc
    return with_extraction(base, ex, limits)
