"""Prometheus metrics of the rich renderer (served by the daemon's /metrics endpoint)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

__all__ = [
    "BLACKHOLED",
    "BROWSER_RESTARTS",
    "CHROMIUM_RSS",
    "CHROMIUM_RSS_LIMIT",
    "PAGES_RENDERED",
    "RENDER_FAILURES",
    "RENDER_SECONDS",
    "REQUESTS",
    "REQUEST_BYTES",
    "TRUNCATED",
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
REQUESTS = Counter(
    "renderer_requests_total",
    "Requests of rendered pages besides their document, by outcome: fetched, cached, or why the guard refused "
    "them (type, method, requests, bytes, scheme, ssrf, dns, robots, politeness, timeout, redirects, "
    "error, navigation, websocket, no_page)",
    ["outcome"],
)
REQUEST_BYTES = Counter("renderer_request_bytes_total", "Response bytes the guard fetched for rendered pages")
BLACKHOLED = Counter(
    "renderer_blackholed_requests_total",
    "Browser requests that bypassed the guard and were swallowed by the blackhole proxy "
    "(Chromium's own background requests included)",
)
TRUNCATED = Counter(
    "renderer_truncated_total", "Rendered pages with a part cut to its size cap, by part", ["part"]
)
