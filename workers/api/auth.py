"""Access control: an API key on every route but the health checks, its scope, its rate.

Keys travel in ``Authorization: Bearer sck_…`` only (never in the query string, which ends
up in proxies' access logs). The public ``key_id`` is kept on the request for the access log;
the key itself is never logged.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from workers.api.context import ApiContext, get_context
from workers.api.errors import ApiError
from workers.api.keys import ApiKey, KeyScope, find_key, scope_allows
from workers.api.ratelimit import KeyRateLimiter

__all__ = ["ReadKey", "WriteKey", "bearer", "read_key", "write_key"]

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key from `streamcrawl api-key create --name N --scope read|write`,"
    " sent as `Authorization: Bearer sck_…`.",
)
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


async def _authenticate(
    request: Request, credentials: HTTPAuthorizationCredentials | None, needed: KeyScope, ctx: ApiContext
) -> ApiKey:
    if credentials is None:
        raise ApiError(
            401,
            "send an API key as `Authorization: Bearer sck_…` (create one with"
            " `streamcrawl api-key create --name NAME --scope read`)",
            headers=_CHALLENGE,
        )
    key = await find_key(ctx.store.pool, credentials.credentials, timeout_s=ctx.timeout_s)
    if key is None:
        raise ApiError(
            401,
            "the API key is not valid: revoked, mistyped, or from another deployment"
            " (list keys with `streamcrawl api-key list`)",
            headers=_CHALLENGE,
        )
    request.state.key_id = key.key_id
    if not scope_allows(key.scope, needed):
        raise ApiError(
            403,
            f"key {key.key_id} ({key.name}) has scope {key.scope}; this route needs a {needed} key"
            f" (`streamcrawl api-key create --name NAME --scope {needed}`)",
        )
    wait_s = await ctx.limiter.acquire(key.key_id, key.rate_per_s)
    if wait_s is not None:
        raise ApiError(
            429,
            f"key {key.key_id} is over its limit of {key.rate_per_s or ctx.limiter.default_per_s}"
            " requests per second: slow down and retry after Retry-After seconds",
            headers={"Retry-After": KeyRateLimiter.retry_after_header(wait_s)},
        )
    ctx.used_keys.add(key.key_id)
    return key


async def read_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ctx: Annotated[ApiContext, Depends(get_context)],
) -> ApiKey:
    """Any valid key (read or write scope)."""
    return await _authenticate(request, credentials, "read", ctx)


async def write_key(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ctx: Annotated[ApiContext, Depends(get_context)],
) -> ApiKey:
    """A key with write scope."""
    return await _authenticate(request, credentials, "write", ctx)


ReadKey = Annotated[ApiKey, Depends(read_key)]
WriteKey = Annotated[ApiKey, Depends(write_key)]
