"""Exceptions and statuses turned into readable StreamCrawl errors."""

from __future__ import annotations

import ssl

import httpx
import pytest

from workers.errors import PermanentFetchError, TransientFetchError
from workers.ingestor.failures import FetchTimeout, TLSFetchError, classify, parse_retry_after, status_error

URL = "https://a.test/page"
TIMEOUTS = {"connect": 5.0, "read": 10.0, "total": 30.0}


def test_parse_retry_after() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after(None) is None and parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0


@pytest.mark.parametrize("status", [500, 502, 503, 504, 408, 429])
def test_transient_statuses(status: int) -> None:
    error = status_error(status, "Reason", URL, retry_after="7")
    assert isinstance(error, TransientFetchError) and error.retry_after == 7.0
    assert str(error) == f"HTTP {status} Reason from {URL} (Retry-After 7s)"


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 451])
def test_permanent_statuses(status: int) -> None:
    error = status_error(status, "Reason", URL)
    assert isinstance(error, PermanentFetchError) and error.status == status


def request() -> httpx.Request:
    return httpx.Request("GET", URL)


def test_classify_network_errors() -> None:
    cases: list[tuple[BaseException, type[Exception], str]] = [
        (
            httpx.ConnectTimeout("x", request=request()),
            FetchTimeout,
            "connect timeout: no connection to a.test within 5s",
        ),
        (
            httpx.ReadTimeout("x", request=request()),
            FetchTimeout,
            "read timeout: a.test sent nothing for 10s",
        ),
        (
            TimeoutError(),
            FetchTimeout,
            "total timeout: fetching https://a.test/page took longer than 30s",
        ),
        (
            httpx.ConnectError("Connection refused", request=request()),
            TransientFetchError,
            "cannot connect to a.test",
        ),
        (
            httpx.RemoteProtocolError("bad", request=request()),
            TransientFetchError,
            "connection to a.test broke",
        ),
        (
            httpx.DecodingError("bad gzip", request=request()),
            PermanentFetchError,
            "undecodable response body",
        ),
        (httpx.UnsupportedProtocol("ftp", request=request()), PermanentFetchError, "cannot fetch"),
    ]
    for exc, kind, text in cases:
        error = classify(exc, URL, timeouts=TIMEOUTS)
        assert type(error) is kind and text in str(error), (exc, error)


def test_classify_tls_errors() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "certificate has expired"
    wrapped = httpx.ConnectError("tls", request=request())
    wrapped.__cause__ = verify
    error = classify(wrapped, URL, timeouts=TIMEOUTS)
    assert isinstance(error, PermanentFetchError)
    assert str(error) == f"TLS certificate of a.test rejected: certificate has expired ({URL})"
    handshake = httpx.ConnectError("tls", request=request())
    handshake.__cause__ = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    assert isinstance(classify(handshake, URL, timeouts=TIMEOUTS), TLSFetchError)
