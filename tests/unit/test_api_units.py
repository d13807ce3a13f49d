"""The read API's pure parts: the committed OpenAPI schema, cursors, keys, rate limits,
content negotiation, the search statement, the supervisor program."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from workers.api.__main__ import openapi_text
from workers.api.cursor import decode_cursor, encode_cursor
from workers.api.errors import ApiError
from workers.api.keys import KEY_PATTERN, key_id_of, scope_allows
from workers.api.ratelimit import KeyRateLimiter
from workers.api.search import SearchQuery, build_search
from workers.settings import Settings, StackSettings
from workers.stack.paths import StackPaths
from workers.stack.supervisor import render_config

ROOT = Path(__file__).resolve().parents[2]


def test_committed_openapi_matches_the_app() -> None:
    committed = (ROOT / "docs" / "openapi.json").read_text()
    assert committed == openapi_text(), (
        "docs/openapi.json is stale: regenerate it with `.venv/bin/python -m workers.api --openapi docs/openapi.json`"
    )
    schema = json.loads(committed)
    assert schema["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schema["components"]["securitySchemes"]["ApiKey"]["description"],
    }
    # Every route but the health checks requires the key.
    for path, item in schema["paths"].items():
        for method, op in item.items():
            secured = bool(op.get("security"))
            assert secured == (path not in ("/healthz", "/readyz")), (method, path)
            if secured:
                assert {"401", "429"} <= set(op["responses"]), (method, path)


def test_cursors_round_trip_and_refuse_anything_else() -> None:
    cursor = encode_cursor("recent", ["2026-03-01T00:00:00+00:00", "ab" * 16])
    assert decode_cursor(cursor, "recent", (str, str)) == ["2026-03-01T00:00:00+00:00", "ab" * 16]
    assert decode_cursor(encode_cursor("relevance", [0.5, "x"]), "relevance", (float, str)) == [0.5, "x"]
    for bad in (
        "",
        "garbage",
        cursor + "x",
        encode_cursor("relevance", [1.0, "x"]),
        encode_cursor("recent", [1, 2]),
    ):
        with pytest.raises(ApiError) as info:
            decode_cursor(bad, "recent", (str, str))
        assert info.value.status == 422 and "cursor" in info.value.message
    with pytest.raises(ApiError):
        decode_cursor(encode_cursor("relevance", [True, "x"]), "relevance", (float, str))


def test_key_format_and_scopes() -> None:
    key = "sck_0123456789ab_" + "A" * 43
    assert KEY_PATTERN.match(key) and key_id_of(key) == "0123456789ab"
    assert key_id_of("sck_0123456789ab_short") is None and key_id_of("Bearer x") is None
    assert (
        scope_allows("write", "read") and scope_allows("read", "read") and not scope_allows("read", "write")
    )


async def test_rate_limiter_counts_per_key_and_says_when_to_retry() -> None:
    limiter = KeyRateLimiter(default_per_s=3)
    results = [await limiter.acquire("a", None) for _ in range(4)]
    assert results[:3] == [None, None, None] and results[3] is not None and 0 <= results[3] <= 1.0
    assert await limiter.acquire("b", None) is None  # another key has its own budget
    assert [await limiter.acquire("c", 10) for _ in range(10)] == [None] * 10  # the key's own rate
    assert KeyRateLimiter.retry_after_header(0.01) == "1"


def test_search_statement_uses_the_indexed_expressions() -> None:
    sql, args = build_search(SearchQuery(q="wombat", domain="example.com", lang="en", batch="b1", limit=10))
    assert "JOIN page_search ps ON ps.url_hash = p.url_hash" in sql
    assert "ps.search @@ websearch_to_tsquery('simple', $1)" in sql
    assert "reverse('.' || p.host) LIKE $2" in sql and args[1] == "moc.elpmaxe.%"
    assert "lower(split_part(coalesce(p.language, p.lang), '-', 1)) = $3" in sql
    assert "crawl_urls u WHERE u.batch = $4" in sql
    assert "ts_headline" in sql and args[-1] == 11  # one more row than asked: is there a next page?
    sql, args = build_search(SearchQuery(domain="a_b.com"))
    assert args[0] == "moc.b\\_a.%"  # LIKE wildcards in a host are literal
    sql, _ = build_search(SearchQuery())
    assert "ORDER BY p.fetched_at DESC, p.url_hash DESC" in sql and "ts_headline" not in sql
    assert "page_search" not in sql  # no join without q


def test_supervisor_runs_the_api_unless_disabled(tmp_path: Path) -> None:
    paths = StackPaths.at(tmp_path)
    stack = StackSettings(data_dir=tmp_path)
    on = render_config(stack=stack, paths=paths, password="x", python="/py")
    assert "[program:api]" in on and "workers.api" in on
    off = render_config(stack=stack, paths=paths, password="x", python="/py", api_enabled=False)
    assert "[program:api]" not in off
    assert Settings().api.bind_host == "127.0.0.1"
