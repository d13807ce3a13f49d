"""``GET /pages``: full-text search and filters over ``pages``, keyset-paginated.

One statement per page of results. Matching uses the search vector of each page (title +
text, ``page_search.search``, migration 0020) through its GIN index with
``websearch_to_tsquery('simple', q)``: quoted phrases, ``or`` and ``-word`` work, and any
input is a valid query (never a syntax error).

Orderings (the cursor carries the last row's sort key, so a page never shifts when rows are
added before it):

* ``relevance`` (default with ``q``): the ``STREAMCRAWL_API_RANK_WINDOW`` (1,000) most
  recently fetched matches are ranked by ``ts_rank(search, query, 1)`` (length-normalised),
  best first, then ``url_hash``; ``ranked`` in the answer says how many were. Ranking
  every match costs one vector read per match: 1.5-3.4 s for a common word at 100k pages,
  against 10-200 ms for the window (bench/stage_api.py). The planner walks the newest-first
  index for common words and the GIN index for rare ones (it tells them apart thanks to the
  statistics target migration 0020 raises);
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
"""The ``lang`` filter's expression: the detected language, else the declared one's primary subtag."""
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


def _filters(sql: _Sql, query: SearchQuery, tsq: str | None) -> None:
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


def build_search(query: SearchQuery, *, rank_window: int = 1_000) -> tuple[str, list[Any]]:
    """The statement of one page of results and its arguments.

    The inner query finds the page's url_hashes (and, for relevance, ranks the newest
    ``rank_window`` matches); the outer one joins ``pages`` for the columns shown and
    computes the snippets of those rows only.
    """
    sql = _Sql()
    ordering = query.ordering
    tsq = f"websearch_to_tsquery('simple', {sql.arg(query.q)})" if query.q else None
    _filters(sql, query, tsq)
    source = "pages p" + (" JOIN page_search ps ON ps.url_hash = p.url_hash" if tsq else "")
    if ordering == "relevance" and tsq is not None:
        keyset = ""
        if query.cursor:
            last_rank, last_hash = decode_cursor(query.cursor, "relevance", (float, str))
            r, h = sql.arg(float(last_rank)), sql.arg(last_hash)
            keyset = f" WHERE r.rank < {r}::real OR (r.rank = {r}::real AND r.url_hash > {h})"
        window = sql.arg(max(1, rank_window))
        limit = sql.arg(query.limit + 1)
        inner = (
            "SELECT r.url_hash, r.fetched_at, r.rank, r.ranked FROM ("
            f" SELECT c.url_hash, c.fetched_at, ts_rank(c.search, {tsq}, 1) AS rank, count(*) OVER () AS ranked"
            f" FROM (SELECT p.url_hash, p.fetched_at, ps.search FROM {source}"
            f" WHERE {' AND '.join(sql.where)} ORDER BY p.fetched_at DESC, p.url_hash DESC LIMIT {window}) c"
            f") r{keyset} ORDER BY r.rank DESC, r.url_hash ASC LIMIT {limit}"
        )
        order_by = "s.rank DESC, s.url_hash ASC"
    else:
        if query.cursor:
            last_at, last_hash = decode_cursor(query.cursor, "recent", (str, str))
            try:
                at = datetime.fromisoformat(last_at)
            except ValueError:
                raise bad_cursor("recent") from None
            sql.where.append(f"(p.fetched_at, p.url_hash) < ({sql.arg(at)}, {sql.arg(last_hash)})")
        limit = sql.arg(query.limit + 1)
        inner = (
            f"SELECT p.url_hash, p.fetched_at, NULL::real AS rank, NULL::bigint AS ranked FROM {source}"
            f" WHERE {' AND '.join(sql.where) or 'true'} ORDER BY p.fetched_at DESC, p.url_hash DESC LIMIT {limit}"
        )
        order_by = "s.fetched_at DESC, s.url_hash DESC"
    headline = (
        f"ts_headline('simple', left(coalesce(p.text, ''), {_HEADLINE_INPUT_CHARS}), {tsq}, '{_HEADLINE_OPTIONS}')"
        if tsq
        else f"left(coalesce(nullif(p.description, ''), p.text, ''), {_SNIPPET_CHARS})"
    )
    statement = (
        f"SELECT s.url_hash, p.url, p.title, p.host, p.route, {LANGUAGE_EXPR} AS language, s.fetched_at,"
        f" s.rank, s.ranked, {headline} AS snippet FROM ({inner}) s"
        f" JOIN pages p ON p.url_hash = s.url_hash ORDER BY {order_by}"
    )
    return statement, sql.args


def _next_cursor(ordering: Order, row: asyncpg.Record) -> str:
    if ordering == "relevance":
        return encode_cursor("relevance", [float(row["rank"] or 0.0), row["url_hash"]])
    return encode_cursor("recent", [row["fetched_at"].isoformat(), row["url_hash"]])


async def search_pages(
    pool: asyncpg.Pool, query: SearchQuery, *, rank_window: int, timeout_s: float
) -> PageList:
    statement, args = build_search(query, rank_window=rank_window)
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
        ranked=int(rows[0]["ranked"]) if rows and rows[0]["ranked"] is not None else None,
    )
