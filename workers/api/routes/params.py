"""Query-parameter checks shared by the routes: canonical hosts and domains, no NUL bytes."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.dependencies.models import Dependant
from pydantic import BeforeValidator

from workers.api.errors import ApiError, ErrorDetail
from workers.scope import registered_domain
from workers.urls import InvalidURL, canonicalize, host_of

__all__ = [
    "NO_NUL",
    "Cursor",
    "IsoDatetime",
    "OptionalText",
    "as_utc",
    "canonical_domain",
    "canonical_host",
    "invalid",
    "page_limit",
    "reject_unknown_query",
]

NO_NUL = r"^[^\x00]*$"
"""PostgreSQL text cannot hold NUL: such input is refused by the schema (422)."""

Cursor = Annotated[
    str | None,
    Query(max_length=4096, pattern=r"^[A-Za-z0-9_-]+$", description="next_cursor of the previous page."),
]
OptionalText = Annotated[str | None, Query(max_length=200, pattern=NO_NUL)]
"""A free-text filter (batch id, error class)."""

_NUMBER = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def _not_a_number(value: object) -> object:
    # pydantic reads a number as seconds since 1970 (until=24 is 1970-01-01T00:00:24Z): the
    # schema says an ISO 8601 date-time, and a bare number is far likelier a mistake.
    if isinstance(value, int | float) or (isinstance(value, str) and _NUMBER.fullmatch(value)):
        raise ValueError("expected an ISO 8601 date-time such as 2026-01-31T12:00:00Z, not a number")
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_not_a_number)]
"""A date-time query value as the schema states it: ISO 8601 only."""


def page_limit(max_page_size: int) -> Any:
    """The ``limit`` parameter of a list route: ``limit: Annotated[int, page_limit(n)] = default``."""
    return Query(ge=1, le=max_page_size, description="Items per page.")


def invalid(where: str, message: str) -> ApiError:
    return ApiError(422, f"{where}: {message}", details=[ErrorDetail(where=where, problem=message)])


def canonical_host(value: str, *, where: str) -> str:
    """A host as stored in ``pages.host`` (lower-case, IDNA), from a host or a URL."""
    text = value.strip()
    try:
        url = canonicalize(text if "://" in text else f"http://{text}/")
    except InvalidURL as exc:
        raise invalid(where, f"not a host name ({exc}); pass e.g. example.com") from None
    host = host_of(url)
    if not host:
        raise invalid(where, "not a host name; pass e.g. example.com")
    return host


def canonical_domain(value: str, *, where: str, extra_suffixes: list[str]) -> str:
    """The registered domain of a host (``www.example.co.uk`` -> ``example.co.uk``)."""
    host = canonical_host(value, where=where)
    return registered_domain(host, extra_suffixes=extra_suffixes) or host


def as_utc(value: datetime, *, where: str) -> datetime:
    """An aware UTC datetime (a naive one is read as UTC)."""
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (OverflowError, ValueError):
        raise invalid(where, "out of the range of representable times") from None


_KNOWN: dict[int, frozenset[str]] = {}


def _query_names(dependant: Dependant) -> set[str]:
    names = {param.alias for param in dependant.query_params}
    for sub in dependant.dependencies:
        names |= _query_names(sub)
    return names


async def reject_unknown_query(request: Request) -> None:
    """A query parameter the route does not take is a 422 (``?lnag=en`` would otherwise be
    ignored silently and return unfiltered results)."""
    route: Any = request.scope.get("route")
    dependant = getattr(route, "dependant", None)
    if dependant is None:
        return
    known = _KNOWN.get(id(route))
    if known is None:
        known = _KNOWN[id(route)] = frozenset(_query_names(dependant))
    unknown = sorted({name for name in request.query_params if name not in known})
    if unknown:
        takes = ", ".join(sorted(known)) or "none"
        raise ApiError(
            422,
            f"unknown query parameter {unknown[0]!r}: {request.url.path} takes {takes}",
            details=[ErrorDetail(where=f"query.{name}", problem="unknown parameter") for name in unknown],
        )
