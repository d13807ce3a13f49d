"""``POST /crawls``: submit URLs or a list as one batch, exactly as ``streamcrawl crawl`` does.

Same validation (the scope through the CLI's ``scope_from_args`` and so
:func:`workers.scope.validate_scope`, URLs through the one
list parser :func:`workers.frontier.parse_list_lines` and so :func:`workers.urls.normalize_url`),
same publishing path (:func:`workers.ledger.publish_batch` with ``origin="api"``). Like the CLI,
an invalid URL in ``urls`` is an error (422 naming it) and invalid lines of ``list`` are
skipped and reported.
"""

import argparse
from typing import Annotated

from aiokafka.errors import KafkaError
from fastapi import APIRouter, Depends, Response

from workers.api.auth import WriteKey
from workers.api.context import ApiContext, get_context
from workers.api.errors import ApiError, ErrorDetail, error_responses
from workers.api.models import CrawlIn, CrawlOut, RejectedLine
from workers.api.routes.params import reject_unknown_query
from workers.cli.cmd_crawl import new_batch_id, scope_from_args
from workers.errors import ConfigError
from workers.frontier import ListEntry, parse_list_lines
from workers.ledger import BatchSpec, publish_batch
from workers.messages import Scope
from workers.settings import Settings

__all__ = ["router"]

Ctx = Annotated[ApiContext, Depends(get_context)]
_REJECTED_SHOWN = 100


def _scope(body: CrawlIn) -> Scope:
    """The CLI's own option-to-scope path (``crawl --depth … --scope …``), so the two cannot drift."""
    options = body.model_dump(
        include={"scope", "depth", "max_pages_per_host", "max_pages", "include", "exclude", "follow_nofollow"}
    )
    return scope_from_args(argparse.Namespace(**options))


def _entries(body: CrawlIn, *, max_urls: int) -> tuple[list[ListEntry], list[RejectedLine], int]:
    entries: list[ListEntry] = []
    if body.urls:
        parsed = parse_list_lines(body.urls, scheme=body.scheme)
        if parsed.rejected:
            number, line, reason = parsed.rejected[0]
            raise ApiError(
                422,
                f"urls[{number - 1}] is not a URL or domain: {line!r} ({reason})",
                details=[
                    ErrorDetail(where=f"body.urls.{n - 1}", problem=why) for n, _, why in parsed.rejected[:20]
                ],
            )
        entries.extend(parsed.entries)
    rejected: list[RejectedLine] = []
    rejected_count = 0
    if body.list_text:
        parsed = parse_list_lines(body.list_text.splitlines(), scheme=body.scheme)
        entries.extend(parsed.entries)
        rejected_count = len(parsed.rejected)
        rejected = [
            RejectedLine(line=n, text=t[:500], reason=why) for n, t, why in parsed.rejected[:_REJECTED_SHOWN]
        ]
    first = {e.url: e for e in reversed(entries)}  # the first occurrence wins, as in the CLI
    entries = [e for e in entries if first.get(e.url) is e]
    if not entries:
        raise ApiError(422, "nothing to crawl: give `urls` or a `list` with at least one valid URL or domain")
    if len(entries) > max_urls:
        raise ApiError(
            422,
            f"{len(entries)} URLs in one request; at most {max_urls} (STREAMCRAWL_API_MAX_CRAWL_URLS):"
            " split the list into several crawls",
        )
    return entries, rejected, rejected_count


def router(settings: Settings) -> APIRouter:
    r = APIRouter(tags=["crawls"], dependencies=[Depends(reject_unknown_query)])

    @r.post(
        "/crawls",
        response_model=CrawlOut,
        status_code=201,
        summary="Submit a crawl",
        responses=error_responses(401, 403, 409, 413, 422, 429, 503),
    )
    async def crawl(ctx: Ctx, _key: WriteKey, body: CrawlIn, response: Response) -> CrawlOut:
        """Publish URLs and/or a list as one batch with the options of `streamcrawl crawl`;
        follow it with GET /batches/{batch}."""
        scope = _scope(body)
        entries, rejected, rejected_count = _entries(body, max_urls=settings.api.max_crawl_urls)
        batch = body.batch or new_batch_id("api")
        pool = ctx.store.pool
        if await pool.fetchval("SELECT 1 FROM crawl_batches WHERE batch = $1", batch, timeout=ctx.timeout_s):
            raise ApiError(409, f"batch {batch!r} already exists: choose another `batch` id, or omit it")
        spec = BatchSpec(batch=batch, origin="api", scope=scope, recrawl=body.recrawl, sitemaps=body.sitemaps)
        async with pool.acquire() as conn:
            try:
                result = await publish_batch(conn, ctx.settings.kafka, spec, entries)
            except ConfigError as exc:
                if "already exists" in str(exc):
                    raise ApiError(409, str(exc)) from None
                raise
            except KafkaError as exc:
                raise ApiError(
                    503,
                    f"Kafka did not answer ({type(exc).__name__}); batch {batch!r} was recorded but not"
                    " all of it was published: submit the crawl again under a new batch id",
                    headers={"Retry-After": "10"},
                ) from None
        response.headers["Location"] = f"/batches/{batch}"
        return CrawlOut(
            batch=batch,
            listed=result.listed,
            published=result.published,
            already_stored=result.already_stored,
            refused=dict(result.refused),
            rejected=rejected,
            rejected_count=rejected_count,
            progress=f"/batches/{batch}",
        )

    return r
