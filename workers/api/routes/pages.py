"""``/pages``: search, metadata by hash or URL, content in each stored format."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Response

from workers.api.auth import ReadKey
from workers.api.content import read_content
from workers.api.context import ApiContext, get_context
from workers.api.errors import ApiError, error_responses
from workers.api.models import URL_HASH_PATTERN, ContentFormat, PageList, PageOut
from workers.api.pages import read_page
from workers.api.routes.params import (
    NO_NUL,
    Cursor,
    IsoDatetime,
    as_utc,
    canonical_domain,
    canonical_host,
    invalid,
    page_limit,
    reject_unknown_query,
)
from workers.api.search import Order, SearchQuery, search_pages
from workers.settings import Settings
from workers.urls import InvalidURL, normalize_url, url_hash

__all__ = ["router"]

Ctx = Annotated[ApiContext, Depends(get_context)]
UrlHash = Annotated[
    str, Path(pattern=URL_HASH_PATTERN, description="blake2b-128 hex of the canonical URL (32 hex digits).")
]
_CONTENT_TYPES = {
    "text/markdown": {"schema": {"type": "string"}},
    "text/plain": {"schema": {"type": "string"}},
    "text/html": {"schema": {"type": "string"}},
    "application/warc": {"schema": {"type": "string", "format": "binary"}},
}


async def _page(ctx: ApiContext, url_hash: str, outlinks: bool, missing: str) -> PageOut:
    found = await read_page(ctx.store.pool, url_hash, outlinks=outlinks, timeout_s=ctx.timeout_s)
    if found is None:
        raise ApiError(404, missing)
    return found


def router(settings: Settings) -> APIRouter:
    api = settings.api
    extra_suffixes = list(settings.discovery.extra_suffixes)
    r = APIRouter(tags=["pages"], dependencies=[Depends(reject_unknown_query)])

    @r.get(
        "/pages",
        response_model=PageList,
        summary="Search stored pages",
        responses=error_responses(401, 403, 422, 429, 503),
    )
    async def search(
        ctx: Ctx,
        _key: ReadKey,
        q: Annotated[
            str | None,
            Query(
                min_length=1,
                max_length=api.max_query_chars,
                pattern=NO_NUL,
                description='Full-text query over title and text: words (all must match), "a phrase",'
                " `or`, `-word`.",
            ),
        ] = None,
        host: Annotated[
            str | None, Query(max_length=253, pattern=NO_NUL, description="Exact host, e.g. www.example.com.")
        ] = None,
        domain: Annotated[
            str | None,
            Query(
                max_length=253,
                pattern=NO_NUL,
                description="Registered domain (of the value given) and all its subdomains.",
            ),
        ] = None,
        lang: Annotated[
            str | None,
            Query(
                pattern=r"^[A-Za-z]{2,8}$",
                description="Language code (ISO 639-1 `en`, `de`, …): detected, else declared.",
            ),
        ] = None,
        batch: Annotated[
            str | None,
            Query(max_length=200, pattern=NO_NUL, description="Only pages this batch requested."),
        ] = None,
        route: Annotated[Literal["fast", "rich"] | None, Query(description="Extraction path.")] = None,
        since: Annotated[IsoDatetime | None, Query(description="Fetched at or after (ISO 8601).")] = None,
        until: Annotated[IsoDatetime | None, Query(description="Fetched before (ISO 8601).")] = None,
        order: Annotated[
            Order | None,
            Query(
                description="relevance (needs q; the default with q) or recent (fetched_at, newest first)."
            ),
        ] = None,
        cursor: Cursor = None,
        limit: Annotated[int, page_limit(api.max_page_size)] = api.default_page_size,
    ) -> PageList:
        """Full-text search (PostgreSQL tsvector + GIN) with filters and keyset pagination."""
        if order == "relevance" and not q:
            raise invalid("query.order", "order=relevance needs a search query q (or use order=recent)")
        since = as_utc(since, where="query.since") if since else None
        until = as_utc(until, where="query.until") if until else None
        if since and until and since >= until:
            raise invalid("query.since", "since must be earlier than until")
        query = SearchQuery(
            q=q.strip() if q else None,
            host=canonical_host(host, where="query.host") if host else None,
            domain=canonical_domain(domain, where="query.domain", extra_suffixes=extra_suffixes)
            if domain
            else None,
            lang=lang.lower() if lang else None,
            batch=batch,
            route=route,
            since=since,
            until=until,
            order=order,
            cursor=cursor,
            limit=limit,
        )
        return await search_pages(ctx.store.pool, query, rank_window=api.rank_window, timeout_s=ctx.timeout_s)

    @r.get(
        "/pages/by-url",
        response_model=PageOut,
        summary="A stored page's metadata, by URL",
        responses=error_responses(401, 403, 404, 422, 429, 503),
    )
    async def by_url(
        ctx: Ctx,
        _key: ReadKey,
        url: Annotated[
            str,
            Query(
                min_length=1,
                max_length=8192,
                pattern=NO_NUL,
                description="The URL as listed or linked; canonicalised like every URL StreamCrawl stores.",
            ),
        ],
        outlinks: Annotated[bool, Query(description="Include the page's outlinks.")] = False,
    ) -> PageOut:
        try:
            canonical = normalize_url(url)
        except InvalidURL as exc:
            raise invalid("query.url", str(exc)) from None
        return await _page(
            ctx, url_hash(canonical), outlinks, f"{canonical} is not stored (crawl it with POST /crawls)"
        )

    @r.get(
        "/pages/{url_hash}",
        response_model=PageOut,
        summary="A stored page's metadata",
        responses=error_responses(401, 403, 404, 422, 429, 503),
    )
    async def page(
        ctx: Ctx,
        _key: ReadKey,
        url_hash: UrlHash,
        outlinks: Annotated[bool, Query(description="Include the page's outlinks.")] = False,
    ) -> PageOut:
        return await _page(ctx, url_hash, outlinks, f"no stored page with url_hash {url_hash}")

    @r.get(
        "/pages/{url_hash}/content",
        summary="A stored page's content",
        response_class=Response,
        responses={
            200: {"description": "The content, in the format asked for.", "content": _CONTENT_TYPES},
            304: {"description": "Unchanged since the ETag sent in If-None-Match."},
            **error_responses(401, 403, 404, 422, 429, 503),
        },
    )
    async def content(
        ctx: Ctx,
        _key: ReadKey,
        url_hash: UrlHash,
        format: Annotated[ContentFormat, Query(description="Which content to send.")] = "markdown",
        if_none_match: Annotated[str | None, Header(include_in_schema=False)] = None,
    ) -> Response:
        """markdown (extracted main content), text (plain main text), html (as fetched), rendered
        (DOM after JavaScript, rich path only) or warc (the page's gzipped WARC records: request,
        response, metadata, conversions)."""
        found = await read_content(ctx.store, url_hash, format)
        headers = {"ETag": found.etag, "Cache-Control": "private, max-age=60"}
        if if_none_match and found.etag in [t.strip() for t in if_none_match.split(",")]:
            return Response(status_code=304, headers=headers)
        if found.encoding:
            headers["Content-Encoding"] = found.encoding
        return Response(found.body, media_type=found.media_type, headers=headers)

    return r
