"""Turn what went wrong during a fetch into one of the errors of ``workers.errors``.

Every message is written for a person reading the dead-letter topic: what failed,
where, and why.

====================================  =============================================
What happened                         Error
====================================  =============================================
connect/read/write timeout            TransientFetchError
total deadline exceeded               TransientFetchError
connection refused / reset / broken   TransientFetchError
HTTP 408, 429, 5xx                    TransientFetchError (``retry_after`` from the
                                      Retry-After header when present)
TLS certificate rejected              PermanentFetchError (no retry)
other TLS handshake failure           :class:`TLSFetchError`, retried, then
                                      PermanentFetchError
HTTP 4xx (other than 408, 429)        PermanentFetchError(status=...)
bad URL, unsupported scheme, undecodable body    PermanentFetchError
resolver errors, robots, breaker      already StreamCrawl errors, unchanged
====================================  =============================================

Two subclasses of :class:`~workers.errors.TransientFetchError` live here because only the
ingestor raises and handles them; neither ever reaches a dead-letter topic under its own
name (the DLQ replay knows the classes of ``workers/errors.py``):

* :class:`TLSFetchError` becomes a PermanentFetchError once the retries are used up;
* :class:`DNSFailure` marks a DNS server failure or timeout (the robots.txt cache passes it
  through as the page's own error instead of caching "robots.txt unreachable");
* :class:`FetchTimeout` marks a timeout, so the fetcher can tell whether the event loop
  was overloaded meanwhile (then the host is not blamed);
* :class:`HostPaused` (an open circuit breaker) re-queues the request with ``not_before``;
  a request that runs out of requeues is dead-lettered as a plain TransientFetchError.
"""

from __future__ import annotations

import email.utils
import ssl
import time

import aiohttp
import httpx

from workers.errors import PermanentFetchError, StreamCrawlError, TransientFetchError

__all__ = [
    "DNSFailure",
    "FetchTimeout",
    "HostPaused",
    "TLSFetchError",
    "classify",
    "parse_retry_after",
    "reworded",
    "status_error",
]

_TRANSIENT_STATUSES = frozenset({408, 429})


class TLSFetchError(TransientFetchError):
    """A TLS handshake failure other than a rejected certificate: retried, then permanent."""


class DNSFailure(TransientFetchError):
    """A DNS lookup that may pass later: timeout, SERVFAIL, refused or unreachable server."""


class FetchTimeout(TransientFetchError):
    """A connect, read or total timeout."""


class HostPaused(TransientFetchError):
    """The host's circuit breaker is open; ``retry_after`` is the time left in its pause.

    ``trips``: how many times in a row the host's breaker has tripped (1 for the first pause).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, trips: int = 1) -> None:
        super().__init__(message, retry_after=retry_after)
        self.trips = trips


def reworded(exc: TransientFetchError, message: str, *, retry_after: float | None) -> TransientFetchError:
    """The same failure with a new message (the fetcher's retry note): every field kept.

    A HostPaused must keep ``trips``: it is what gives up the requests of a host whose
    breaker keeps tripping (``requeue.next_try``); re-made with the default of 1, such a
    request was re-queued for every pause, for ever.
    """
    if isinstance(exc, HostPaused):
        return HostPaused(message, retry_after=retry_after, trips=exc.trips)
    return type(exc)(message, retry_after=retry_after)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def status_error(status: int, reason: str, url: str, *, retry_after: str | None = None) -> StreamCrawlError:
    """The error for a final response with a non-2xx status."""
    what = f"HTTP {status} {reason}".rstrip()
    if status >= 500 or status in _TRANSIENT_STATUSES:
        delay = parse_retry_after(retry_after)
        hint = f" (Retry-After {delay:.0f}s)" if delay is not None else ""
        return TransientFetchError(f"{what} from {url}{hint}", retry_after=delay)
    return PermanentFetchError(f"{what} from {url}", status=status)


def _tls_cause(exc: BaseException) -> BaseException | None:
    """The ssl error behind ``exc`` (through httpx's and aiohttp's wrappers), if any."""
    wrapper: BaseException | None = None
    seen: BaseException | None = exc
    for _ in range(8):
        if seen is None:
            break
        # aiohttp's wrappers first: they subclass ssl.CertificateError / ssl.SSLError too.
        if isinstance(seen, aiohttp.ClientConnectorCertificateError):
            return seen.certificate_error
        if isinstance(seen, aiohttp.ClientSSLError):
            wrapper = seen
            if isinstance(seen.os_error, ssl.SSLError):
                return seen.os_error
        elif isinstance(seen, ssl.SSLError | ssl.CertificateError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return wrapper


def _is_certificate_error(exc: BaseException) -> bool:
    return isinstance(exc, ssl.SSLCertVerificationError | ssl.CertificateError)


def classify(exc: BaseException, url: str, *, timeouts: dict[str, float]) -> StreamCrawlError:
    """The StreamCrawl error for an exception raised while fetching ``url``."""
    if isinstance(exc, StreamCrawlError):
        return exc
    host = httpx.URL(url).host if "://" in url else url
    if isinstance(exc, httpx.ConnectTimeout):
        return FetchTimeout(
            f"connect timeout: no connection to {host} within {timeouts.get('connect', 0):g}s ({url})"
        )
    if isinstance(exc, httpx.ReadTimeout):
        return FetchTimeout(f"read timeout: {host} sent nothing for {timeouts.get('read', 0):g}s ({url})")
    if isinstance(exc, httpx.TimeoutException):
        return FetchTimeout(f"timeout talking to {host} ({type(exc).__name__}) ({url})")
    if isinstance(exc, TimeoutError):
        return FetchTimeout(f"total timeout: fetching {url} took longer than {timeouts.get('total', 0):g}s")
    tls = _tls_cause(exc)
    if tls is not None:
        detail = getattr(tls, "verify_message", None) or getattr(tls, "reason", None) or str(tls)
        if _is_certificate_error(tls):
            return PermanentFetchError(f"TLS certificate of {host} rejected: {detail} ({url})")
        return TLSFetchError(f"TLS handshake with {host} failed: {detail} ({url})")
    if isinstance(exc, httpx.ConnectError):
        return TransientFetchError(f"cannot connect to {host}: {exc} ({url})")
    if isinstance(exc, httpx.DecodingError):
        return PermanentFetchError(f"undecodable response body from {url}: {exc}")
    if isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL):
        return PermanentFetchError(f"cannot fetch {url}: {exc}")
    if isinstance(exc, httpx.TransportError):
        return TransientFetchError(f"connection to {host} broke ({type(exc).__name__}: {exc}) ({url})")
    if isinstance(exc, ssl.SSLError | OSError):
        return TransientFetchError(f"network error talking to {host}: {exc} ({url})")
    return PermanentFetchError(f"unexpected {type(exc).__name__} fetching {url}: {exc}")
