"""``/healthz`` (the process answers), ``/readyz`` (PostgreSQL and S3 answer), ``/metrics``.

The health checks need no key (probes and load balancers call them); ``/metrics`` does, like
every other route (Prometheus sends it with ``authorization: {credentials_file: …}``).
"""

import asyncio
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from workers.api.auth import ReadKey
from workers.api.context import ApiContext, get_context
from workers.api.errors import error_responses
from workers.api.models import Health
from workers.api.routes.params import reject_unknown_query
from workers.errors import StreamCrawlError
from workers.settings import Settings
from workers.storage.pages import PG_CONNECTION_ERRORS
from workers.storage.plan import Part

__all__ = ["router"]

Ctx = Annotated[ApiContext, Depends(get_context)]
_PROBE_KEY = "healthz/readyz-probe"  # never written: a GET of it answers "no such key" when S3 is up
_PROBE_TIMEOUT_S = 3.0
_FAILURES = (*PG_CONNECTION_ERRORS, StreamCrawlError, asyncpg.PostgresError)


async def _check_postgres(ctx: ApiContext) -> str:
    try:
        await ctx.store.pool.fetchval("SELECT 1", timeout=_PROBE_TIMEOUT_S)
    except _FAILURES as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


async def _check_s3(ctx: ApiContext) -> str:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT_S):
            await ctx.store.read_part(Part(_PROBE_KEY, ""))
    except _FAILURES as exc:
        return f"unavailable: {type(exc).__name__}"
    return "ok"


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["operations"], dependencies=[Depends(reject_unknown_query)])

    @r.get("/healthz", response_model=Health, summary="Liveness: the process answers")
    async def healthz() -> Health:
        return Health(status="ok")

    @r.get(
        "/readyz",
        response_model=Health,
        summary="Readiness: PostgreSQL and S3 answer",
        responses={503: {"model": Health, "description": "A dependency did not answer."}},
    )
    async def readyz(ctx: Ctx) -> Response:
        postgres, s3 = await asyncio.gather(_check_postgres(ctx), _check_s3(ctx))
        checks = {"postgres": postgres, "s3": s3}
        ok = all(v == "ok" for v in checks.values())
        body = Health(status="ok" if ok else "unavailable", checks=checks)
        return JSONResponse(body.model_dump(), status_code=200 if ok else 503)

    @r.get(
        "/metrics",
        summary="Prometheus metrics",
        response_class=Response,
        responses={
            200: {"content": {"text/plain": {"schema": {"type": "string"}}}, "description": "Metrics."},
            **error_responses(401, 403, 429, 503),
        },
    )
    async def metrics(_key: ReadKey) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    return r
