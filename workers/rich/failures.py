"""Why a render failed, as one of StreamCrawl's errors (which decides retry, fallback or DLQ).

==================================  =====================  ==============
what happened                       error                  ``reason``
==================================  =====================  ==============
page deadline passed                RenderTimeout          timeout
tab crashed (OOM, renderer crash)   TransientFetchError    tab_crash
browser died or disconnected        TransientFetchError    browser_crash
DNS failure, invalid/unsafe URL     PermanentFetchError    navigation
other network error                 TransientFetchError    navigation
a download, not a page              ExtractionError        navigation
HTTP 429 or 5xx                     TransientFetchError    http_status
other HTTP 4xx                      PermanentFetchError    http_status
empty DOM                           ExtractionError        empty
anything else from the browser      TransientFetchError    other
==================================  =====================  ==============

``reason`` is set on the raised error (``failure_reason(exc)`` reads it) and labels the
``renderer_render_failures_total`` metric.
"""

from __future__ import annotations

from workers.errors import (
    ExtractionError,
    PermanentFetchError,
    RenderTimeout,
    StreamCrawlError,
    TransientFetchError,
)

__all__ = ["browser_gone", "classify", "failure_reason", "short", "status_error", "tagged"]

_PERMANENT_NET = ("ERR_NAME_NOT_RESOLVED", "ERR_INVALID_URL", "ERR_UNSAFE_PORT", "ERR_BLOCKED_BY_CLIENT")
_CLOSED = ("has been closed", "Browser closed", "Connection closed", "browser has disconnected")


def tagged(exc: StreamCrawlError, reason: str) -> StreamCrawlError:
    exc.reason = reason  # type: ignore[attr-defined]
    return exc


def failure_reason(exc: BaseException) -> str:
    return str(getattr(exc, "reason", "other"))


def short(exc: BaseException, limit: int = 300) -> str:
    """The first lines of an error message (Playwright appends long call logs)."""
    lines = []
    for line in str(exc).strip().splitlines():
        if line.strip().startswith("Call log"):
            break
        if line.strip():
            lines.append(line.strip())
    text = " ".join(lines[:2]) if lines else type(exc).__name__
    return text[:limit]


def browser_gone(exc: BaseException) -> bool:
    """True when the error says the browser (not just the tab) is gone."""
    message = str(exc)
    return any(marker in message for marker in _CLOSED)


def classify(exc: BaseException, url: str, *, browser_alive: bool) -> StreamCrawlError:
    """The StreamCrawl error for a Playwright/Crawl4AI exception raised while rendering ``url``."""
    message = short(exc)
    if not browser_alive or browser_gone(exc):
        return tagged(TransientFetchError(f"browser gone while rendering {url}: {message}"), "browser_crash")
    if "crash" in message.lower():
        return tagged(TransientFetchError(f"tab crashed rendering {url}: {message}"), "tab_crash")
    if "Download is starting" in message:
        return tagged(ExtractionError(f"{url} is not a page (the browser would download it)"), "navigation")
    if "Timeout" in message:
        return tagged(RenderTimeout(f"not rendered in time: {url}: {message}"), "timeout")
    if any(code in message for code in _PERMANENT_NET):
        return tagged(PermanentFetchError(f"navigation to {url} failed: {message}"), "navigation")
    if "net::ERR_" in message:
        return tagged(TransientFetchError(f"navigation to {url} failed: {message}"), "navigation")
    return tagged(TransientFetchError(f"render of {url} failed: {message}"), "other")


def status_error(status: int | None, url: str) -> StreamCrawlError | None:
    """The error for an HTTP error status of the rendered navigation, or None."""
    if status is None or status < 400:
        return None
    message = f"rendering {url} got HTTP {status}"
    if status == 429 or status >= 500:
        return tagged(TransientFetchError(message), "http_status")
    return tagged(PermanentFetchError(message, status=status), "http_status")
