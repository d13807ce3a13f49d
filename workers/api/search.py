"""``GET /pages``: full-text search and filters over ``pages``, keyset-paginated.

One statement per page of results. Matching uses the search vector of each page (title +
text, ``page_search.search``, migration 0020) through its GIN index with
``websearch_to_tsquery('simple', q)``: quoted phrases, ``or`` and ``-word`` work, and any
input is a valid query (never a syntax error).

Orderings (the cursor carries the last row's sort key, so a page never shifts when rows are
added before it):

* ``relevance`` (default with ``q``): ``ts_rank(ps.search, query, 1)`` (length-normalised)
  descending, then ``url_hash``. Every match is ranked before the first page is cut, so a
  very common word costs more than a rare one (bench/stage_api.py measures both);
* ``recent`` (default without ``q``): ``fetched_at`` descending, then ``url_hash``, on the
  ``(fetched_at, url_hash)`` index. A page recrawled while a client pages through moves
  to the front: it is not shown twice, and it may be missed by that walk.

Filters: ``host`` (exact, canonicalised), ``domain`` (the registered domain and its
subdomains: an index range on ``reverse('.' || host)``), ``lang`` (detected language, else
the declared one's primary subtag), ``batch`` (membership in ``crawl_urls``: a page belongs
to every batch that requested it), ``route``, ``since``/``until`` (``fetched_at``, until
exclusive). Snippets (``ts_headline``) are computed for the returned rows only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import asyncpg

from workers.api.cursor import bad_cursor, decode_cursor, encode_cursor
from workers.api.models import PageHit, PageList

__all__ = ["LANGUAGE_EXPR", "Order", "SearchQuery", "build_search", "search_pages"]

Order = Literal["relevance", "recent"]
LANGUAGE_EXPR = "lower(split_part(coalesce(p.language, p.lang), '-', 1))"
"""The ``lang`` filter's expression (indexed by migration 0020)."""
_SNIPPET_CHARS = 200
_HEADLINE_INPUT_CHARS = 100_000  # the part of the text the search vector covers
_HEADLINE_OPTIONS = 'MaxWords=30, MinWords=12, MaxFragments=2, FragmentDelimiter=" … "'


@dataclass(frozen=True, slots=True)
class SearchQuery:
    q: str | None = None
    host: str | None = None
    domain: str | None = None
    lang: str | None = None
    batch: str | None = None
    route: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    order: Order | None = None
    cursor: str | None = None
    limit: int = 20

    @property
    def ordering(self) -> Order:
        return self.order or ("relevance" if self.q else "recent")


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


class _Sql:
    def __init__(self) -> None:
        self.args: list[Any] = []
        self.where: list[str] = []

    def arg(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"


def build_search(query: SearchQuery) -> tuple[str, list[Any]]:
    sql = _Sql()
    ordering = query.ordering
    tsq = f"websearch_to_tsquery('simple', {sql.arg(query.q)})" if query.q else None
    if tsq is not None:
        sql.where.append(f"ps.search @@ {tsq}")
    if query.host:
        sql.where.append(f"p.host = {sql.arg(query.host)}")
    if query.domain:
        pattern = _like_escape(("." + query.domain)[::-1]) + "%"
        sql.where.append(f"reverse('.' || p.host) LIKE {sql.arg(pattern)}")
    if query.lang:
        sql.where.append(f"{LANGUAGE_EXPR} = {sql.arg(query.lang)}")
    if query.route:
        sql.where.append(f"p.route = {sql.arg(query.route)}")
    if query.since:
        sql.where.append(f"p.fetched_at >= {sql.arg(query.since)}")
    if query.until:
        sql.where.append(f"p.fetched_at < {sql.arg(query.until)}")
    if query.batch:
        sql.where.append(
            f"EXISTS (SELECT 1 FROM crawl_urls u WHERE u.batch = {sql.arg(query.batch)}"
            " AND u.url_hash = p.url_hash)"
        )
    if ordering == "relevance":
        rank = f"ts_rank(ps.search, {tsq}, 1)" if tsq else "0::real"
        if query.cursor:
            last_rank, last_hash = decode_cursor(query.cursor, "relevance", (float, str))
            r, h = sql.arg(float(last_rank)), sql.arg(last_hash)
            sql.where.append(f"({rank} < {r}::real OR ({rank} = {r}::real AND p.url_hash > {h}))")
        order_by = f"{rank} DESC, p.url_hash ASC"
    else:
        rank = "NULL::real"
        if query.cursor:
            last_at, last_hash = decode_cursor(query.cursor, "recent", (str, str))
            try:
                at = datetime.fromisoformat(last_at)
            except ValueError:
                raise bad_cursor("recent") from None
            sql.where.append(f"(p.fetched_at, p.url_hash) < ({sql.arg(at)}, {sql.arg(last_hash)})")
        order_by = "p.fetched_at DESC, p.url_hash DESC"
    limit = sql.arg(query.limit + 1)
    headline = (
        f"ts_headline('simple', left(coalesce(s.text, ''), {_HEADLINE_INPUT_CHARS}), {tsq}, '{_HEADLINE_OPTIONS}')"
        if tsq
        else f"left(coalesce(nullif(s.description, ''), s.text, ''), {_SNIPPET_CHARS})"
    )
    where = " AND ".join(sql.where) or "true"
    statement = (
        f"SELECT s.url_hash, s.url, s.title, s.host, s.route, s.language, s.fetched_at, s.rank,"
        f" {headline} AS snippet FROM ("
        f" SELECT p.url_hash, p.url, p.title, p.host, p.route, p.text, p.description,"
        f" {LANGUAGE_EXPR} AS language, p.fetched_at, {rank} AS rank"
        f" FROM pages p{' JOIN page_search ps ON ps.url_hash = p.url_hash' if tsq else ''}"
        f" WHERE {where} ORDER BY {order_by} LIMIT {limit}) s"
    )
    return statement, sql.args


def _next_cursor(ordering: Order, row: asyncpg.Record) -> str:
    if ordering == "relevance":
        return encode_cursor("relevance", [float(row["rank"] or 0.0), row["url_hash"]])
    return encode_cursor("recent", [row["fetched_at"].isoformat(), row["url_hash"]])


async def search_pages(pool: asyncpg.Pool, query: SearchQuery, *, timeout_s: float) -> PageList:
    statement, args = build_search(query)
    rows = await pool.fetch(statement, *args, timeout=timeout_s)
    ordering = query.ordering
    page = rows[: query.limit]
    more = len(rows) > query.limit
    return PageList(
        items=[
            PageHit(
                url_hash=r["url_hash"],
                url=r["url"],
                title=r["title"],
                host=r["host"],
                route=r["route"],
                language=r["language"] or None,
                fetched_at=r["fetched_at"],
                snippet=r["snippet"] or "",
                rank=None if r["rank"] is None else float(r["rank"]),
            )
            for r in page
        ],
        next_cursor=_next_cursor(ordering, page[-1]) if more and page else None,
        limit=query.limit,
    )
