"""Errors as JSON that says what to fix, one shape for every status.

::

    {"error": {"status": 422, "code": "invalid_request",
               "message": "query.limit: Input should be less than or equal to 100",
               "details": [{"where": "query.limit", "problem": "Input should be ..."}]}}

* 401 ``unauthorized`` (no or unknown key), 403 ``forbidden`` (the key's scope), 404
  ``not_found``, 409 ``conflict``, 413 ``too_large``, 422 ``invalid_request``, 429
  ``rate_limited`` (with ``Retry-After``), 503 ``unavailable`` (PostgreSQL, S3 or Kafka did not
  answer, or a query ran past ``STREAMCRAWL_API_QUERY_TIMEOUT_S``; with ``Retry-After``).
* Bad input is never a 500: request validation, StreamCrawl's ``ConfigError`` (a bad scope,
  URL or list) and PostgreSQL's data errors all map to 422.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from workers.errors import ConfigError, DependencyUnavailable, RecordRejected

__all__ = [
    "ApiError",
    "ErrorBody",
    "ErrorDetail",
    "ErrorResponse",
    "error_responses",
    "install_error_handlers",
]

log = logging.getLogger(__name__)

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
    429: "rate_limited",
    503: "unavailable",
}


class ErrorDetail(BaseModel):
    where: str = Field(description="The part of the request at fault, e.g. `query.limit` or `body.urls.3`.")
    problem: str


class ErrorBody(BaseModel):
    status: int
    code: str = Field(description="Stable machine-readable code: not_found, invalid_request, rate_limited, …")
    message: str = Field(description="What went wrong and what to change.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorBody


class ApiError(Exception):
    """Raised by routes and dependencies; rendered as an :class:`ErrorResponse`."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        details: Sequence[ErrorDetail] = (),
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = list(details)
        self.headers = headers or {}


def _response(
    status: int, message: str, details: Sequence[ErrorDetail] = (), headers: dict[str, str] | None = None
) -> JSONResponse:
    body = ErrorResponse(
        error=ErrorBody(
            status=status, code=_CODES.get(status, "error"), message=message, details=list(details)
        )
    )
    return JSONResponse(body.model_dump(), status_code=status, headers=headers)


_DESCRIPTIONS = {
    401: "No API key, or not a valid one (send `Authorization: Bearer sck_…`).",
    403: "The key's scope does not allow this route (POST needs a write key).",
    404: "No such resource.",
    409: "Conflicts with the current state (e.g. the batch id exists).",
    413: "The request body is too large.",
    422: "The request is invalid; the message says what to change.",
    429: "Too many requests for this key; retry after `Retry-After` seconds.",
    503: "A backing service did not answer in time; retry after `Retry-After` seconds.",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the given error statuses (one JSON model for all)."""
    return {s: {"model": ErrorResponse, "description": _DESCRIPTIONS[s]} for s in statuses}


def _where(loc: Sequence[int | str]) -> str:
    return ".".join(str(p) for p in loc) or "request"


async def _validation(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    details = [
        ErrorDetail(where=_where(err.get("loc", ())), problem=str(err.get("msg", "invalid value")))
        for err in exc.errors()
    ]
    message = "; ".join(f"{d.where}: {d.problem}" for d in details[:5]) or "invalid request"
    return _response(422, message, details)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail)
    if exc.status_code == 400:  # FastAPI's "There was an error parsing the body"
        return _response(
            422,
            "the request body is not a JSON document: send UTF-8 JSON with Content-Type: application/json",
            [ErrorDetail(where="body", problem=message)],
        )
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route {request.url.path}: see /docs for the routes this API serves"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}: see /docs"
    return _response(exc.status_code, message, headers=dict(exc.headers or {}))


async def _api(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _response(exc.status, exc.message, exc.details, exc.headers)


async def _config(request: Request, exc: Exception) -> JSONResponse:
    return _response(422, " ".join(str(exc).split()))


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    log.warning("dependency unavailable on %s: %s", request.url.path, exc)
    return _response(503, f"{exc}; retry shortly", headers={"Retry-After": "5"})


async def _timeout(request: Request, exc: Exception) -> JSONResponse:
    log.warning("query timed out on %s", request.url.path)
    return _response(
        503,
        "the query ran past its time limit (STREAMCRAWL_API_QUERY_TIMEOUT_S): narrow it"
        " with filters (host, domain, batch, since) or a more specific q",
        headers={"Retry-After": "5"},
    )


async def _postgres(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, asyncpg.PostgresError)
    state = exc.sqlstate or ""
    if state.startswith("22"):  # data exception: the input, not the server
        return _response(422, f"a parameter is not acceptable to PostgreSQL: {exc}")
    if state == "57014":  # query_canceled: the statement timeout
        return await _timeout(request, exc)
    log.error("PostgreSQL error on %s: %s (%s)", request.url.path, exc, state)
    return _response(
        503, "PostgreSQL could not answer this request; retry shortly", headers={"Retry-After": "5"}
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation)
    app.add_exception_handler(StarletteHTTPException, _http)
    app.add_exception_handler(ApiError, _api)
    app.add_exception_handler(ConfigError, _config)
    app.add_exception_handler(RecordRejected, _config)
    app.add_exception_handler(DependencyUnavailable, _unavailable)
    app.add_exception_handler(TimeoutError, _timeout)
    app.add_exception_handler(asyncpg.PostgresError, _postgres)
