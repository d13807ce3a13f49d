"""Prometheus metrics of the rich renderer (served by the daemon's /metrics endpoint)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BROWSER_RESTARTS",
    "CHROMIUM_RSS",
    "CHROMIUM_RSS_LIMIT",
    "PAGES_RENDERED",
    "RENDER_FAILURES",
    "RENDER_SECONDS",
]

PAGES_RENDERED = Counter("renderer_pages_rendered_total", "Pages rendered by Chromium")
RENDER_FAILURES = Counter(
    "renderer_render_failures_total",
    "Renders that failed, by reason (timeout, tab_crash, browser_crash, http_status, navigation, other)",
    ["reason"],
)
RENDER_SECONDS = Histogram(
    "renderer_render_seconds",
    "Time to render one page: navigation, settling and DOM capture",
    buckets=(0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20, 30, 60),
)
BROWSER_RESTARTS = Counter(
    "renderer_browser_restarts_total",
    "Browser restarts, by reason (pages: recycled after N pages, memory: above the RSS limit, crash)",
    ["reason"],
)
CHROMIUM_RSS = Gauge(
    "renderer_chromium_rss_bytes",
    "Memory of Chromium's whole process tree (PSS: pages shared between its processes counted once)",
)
CHROMIUM_RSS_LIMIT = Gauge(
    "renderer_chromium_rss_limit_bytes",
    "Chromium memory above which the browser is restarted (STREAMCRAWL_RENDERER_MAX_BROWSER_RSS_MB)",
)
