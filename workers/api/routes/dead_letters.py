"""``/dead-letters``: what failed and why (from the dead-letter topics)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from workers.api.auth import ReadKey
from workers.api.context import ApiContext, get_context
from workers.api.dead_letters import DeadLetterQuery, list_dead_letters
from workers.api.errors import error_responses
from workers.api.models import DeadLetterList
from workers.api.routes.params import NO_NUL, Cursor, OptionalText, page_limit, reject_unknown_query
from workers.settings import Settings
from workers.topics import Stage

__all__ = ["router"]

Ctx = Annotated[ApiContext, Depends(get_context)]


def router(settings: Settings) -> APIRouter:
    api = settings.api
    r = APIRouter(tags=["dead letters"], dependencies=[Depends(reject_unknown_query)])

    @r.get(
        "/dead-letters",
        response_model=DeadLetterList,
        summary="Dead letters: what failed, where and why",
        responses=error_responses(401, 403, 422, 429, 503),
    )
    async def dead_letters(
        ctx: Ctx,
        _key: ReadKey,
        batch: OptionalText = None,
        stage: Annotated[Stage | None, Query(description="The stage that gave up on the record.")] = None,
        error_class: Annotated[
            str | None,
            Query(
                max_length=200, pattern=NO_NUL, description="e.g. PermanentFetchError, TransientFetchError."
            ),
        ] = None,
        cursor: Cursor = None,
        limit: Annotated[int, page_limit(api.max_page_size)] = api.default_page_size,
    ) -> DeadLetterList:
        """Read from the DLQ topics, oldest first; nothing is consumed or committed."""
        query = DeadLetterQuery(stage=stage, batch=batch, error_class=error_class, cursor=cursor, limit=limit)
        return await list_dead_letters(ctx.settings.kafka, query, scan=api.dead_letter_scan)

    return r
