"""``/batches``: a batch's progress, the same model the CLI shows (``BatchProgress.summary()``)."""

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query

from workers.api.auth import ReadKey
from workers.api.context import ApiContext, get_context
from workers.api.cursor import bad_cursor, decode_cursor, encode_cursor
from workers.api.errors import ApiError, error_responses
from workers.api.models import BatchList, BatchOut
from workers.api.routes.params import Cursor, as_utc, page_limit, reject_unknown_query
from workers.ledger import BatchProgress, list_progress, read_progress
from workers.settings import Settings

__all__ = ["BATCH_ID_PATTERN", "batch_out", "router"]

Ctx = Annotated[ApiContext, Depends(get_context)]
BATCH_ID_PATTERN = r"^[^\x00/]{1,200}$"


def batch_out(progress: BatchProgress) -> BatchOut:
    """The CLI's summary plus the batch's origin, creation time and an ETA derived from it."""
    summary = progress.summary()
    rate = progress.pages_per_s
    if progress.complete:
        eta: float | None = 0.0
    else:
        eta = round(progress.in_flight / rate, 1) if rate > 0 else None
    return BatchOut(**summary, origin=progress.origin, created_at=progress.created_at, eta_s=eta)


def router(settings: Settings) -> APIRouter:
    api = settings.api
    r = APIRouter(tags=["batches"], dependencies=[Depends(reject_unknown_query)])

    @r.get(
        "/batches",
        response_model=BatchList,
        summary="List batches, newest first",
        responses=error_responses(401, 403, 422, 429, 503),
    )
    async def batches(
        ctx: Ctx,
        _key: ReadKey,
        origin: Annotated[
            Literal["cli", "dagster", "api", "demo"] | None, Query(description="Who published the batch.")
        ] = None,
        status: Annotated[
            Literal["running", "complete"] | None,
            Query(description="complete: every URL accounted for; running: not yet."),
        ] = None,
        cursor: Cursor = None,
        limit: Annotated[int, page_limit(api.max_page_size)] = api.default_page_size,
    ) -> BatchList:
        where: list[str] = []
        args: list[object] = []
        if origin:
            args.append(origin)
            where.append(f"origin = ${len(args)}")
        if status == "complete":
            where.append("completed_at IS NOT NULL")
        elif status == "running":
            where.append("completed_at IS NULL")
        if cursor:
            created, batch = decode_cursor(cursor, "batches", (str, str))
            try:
                created_at = as_utc(datetime.fromisoformat(created), where="query.cursor")
            except ValueError:
                raise bad_cursor("batches") from None
            args += [created_at, batch]
            where.append(f"(created_at, batch) < (${len(args) - 1}, ${len(args)})")
        args.append(limit + 1)
        rows = await ctx.store.pool.fetch(
            "SELECT batch, created_at FROM crawl_batches"
            + (f" WHERE {' AND '.join(where)}" if where else "")
            + f" ORDER BY created_at DESC, batch DESC LIMIT ${len(args)}",
            *args,
            timeout=ctx.timeout_s,
        )
        page = rows[:limit]
        progress = await list_progress(ctx.store.pool, [row["batch"] for row in page])
        last = page[-1] if page and len(rows) > limit else None
        return BatchList(
            items=[batch_out(p) for p in progress],
            next_cursor=encode_cursor("batches", [last["created_at"].isoformat(), last["batch"]])
            if last
            else None,
            limit=limit,
        )

    @r.get(
        "/batches/{batch}",
        response_model=BatchOut,
        summary="A batch's progress",
        responses=error_responses(401, 403, 404, 422, 429, 503),
    )
    async def batch(
        ctx: Ctx,
        _key: ReadKey,
        batch: Annotated[str, Path(pattern=BATCH_ID_PATTERN, description="The batch id.")],
    ) -> BatchOut:
        """requested (listed + discovered), stored, unchanged, skipped and dead-lettered by reason,
        in flight, pages/s and an ETA: what `streamcrawl crawl --wait` shows."""
        progress = await read_progress(ctx.store.pool, batch)
        if progress is None:
            raise ApiError(404, f"no batch {batch!r} (list batches with GET /batches)")
        return batch_out(progress)

    return r
