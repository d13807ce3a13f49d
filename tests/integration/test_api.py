"""The read API in-process (ASGI) over the real PostgreSQL, S3 and Kafka of the session.

A module-wide corpus of 60 pages in its own database: search by words of the text and the
title, every filter, keyset pagination, content in each format (the stored bytes), metadata
by hash and by URL, batch progress, dead letters, crawl submission's validation, and access
control (keys, scopes, rate limits, nothing of a key in the logs).
"""

from __future__ import annotations

import dataclasses
import io
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
import zstandard
from warcio.archiveiterator import ArchiveIterator

from tests.helpers.api import api_client, auth, fresh_database, make_key, store_pages
from tests.helpers.kafka import produce
from workers.api.keys import key_id_of, revoke_key
from workers.ledger import BatchSpec, Candidate, admit, create_batch, mark_published, read_progress
from workers.messages import DeadLetter, ProcessedPage, Scope, compress_html, encode
from workers.settings import DiscoverySettings, Settings, StorageSettings
from workers.storage import PageStore
from workers.topics import PROCESSED_DLQ, RAW_PAGE_DLQ
from workers.urls import canonicalize, url_hash

pytestmark = pytest.mark.integration

HOSTS = ["news.alpha.test", "blog.alpha.test", "beta.test", "xn--bcher-kva.test"]
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _page(n: int) -> ProcessedPage:
    host = HOSTS[n % len(HOSTS)]
    url = canonicalize(f"https://{host}/articles/{n}")
    lang = "de" if n % 3 == 0 else "en"
    word = "quokka" if n % 5 == 0 else "wombat"
    text = (
        f"Article {n} about the {word} population. "
        + ("Ein Artikel über Tiere. " if lang == "de" else "A report about animals. ")
        + " ".join(f"filler{n % 7} sentence" for _ in range(20))
    )
    fetched = (T0 + timedelta(hours=n)).timestamp()
    return ProcessedPage(
        url=url,
        url_hash=url_hash(url),
        host=host,
        final_url=url,
        status=200,
        route="rich" if n % 4 == 1 else "fast",
        score=80,
        fetched_at=fetched,
        processed_at=fetched + 1,
        content_hash=f"{n:032x}",
        html_zstd=compress_html(
            f"<html><head><title>Page {n}</title></head><body>{text}</body></html>".encode()
        ),
        markdown=f"# Page {n}\n\n{text}\n",
        rendered_html_zstd=compress_html(f"<html><body>rendered {n}</body></html>".encode())
        if n % 4 == 1
        else None,
        title=f"Page {n} {'heron' if n == 7 else 'title'}",
        description=f"Description of page {n}",
        lang=f"{lang}-XX" if n % 2 else lang,
        outlinks=[f"https://{host}/articles/{n + 1}"],
        word_count=len(text.split()),
        text_hash=f"{n:032x}",
        simhash=n,
        text=text,
        language=lang if n % 6 else None,  # some pages have only the declared language
    )


PAGES = [_page(n) for n in range(60)]


@dataclass
class Env:
    settings: Settings
    client: httpx.AsyncClient
    read: str
    write: str
    store: PageStore


@pytest.fixture(scope="module")
async def env(settings: Settings) -> AsyncIterator[Env]:
    async with fresh_database(settings.postgres) as pg:
        local = settings.model_copy(
            update={
                "postgres": pg,
                "storage": StorageSettings(object_layout="segment", s3_parallelism=4),
                "discovery": DiscoverySettings(extra_suffixes=["test"]),  # like the demo web's demo.test
                "api": settings.api.model_copy(update={"rate_limit_per_s": 1000, "max_page_size": 25}),
            }
        )
        async with PageStore(pg, settings.s3, local.storage) as store, api_client(local) as client:
            await store_pages(store, PAGES)
            conn = await asyncpg.connect(pg.dsn())
            try:
                await _batch(conn, "batch-even", [p for i, p in enumerate(PAGES) if i % 2 == 0])
                await _batch(conn, "batch-low", PAGES[:10])
            finally:
                await conn.close()
            yield Env(local, client, await make_key(pg, "read"), await make_key(pg, "write"), store)


async def _batch(conn: asyncpg.Connection, batch: str, pages: list[ProcessedPage]) -> None:
    await create_batch(conn, BatchSpec(batch=batch, origin="cli", scope=Scope()))
    await admit(
        conn,
        batch=batch,
        scope=Scope(),
        candidates=[Candidate(url=p.url, url_hash=p.url_hash, host=p.host) for p in pages],
    )
    await mark_published(conn, batch)


async def _get(env: Env, path: str, **params: Any) -> httpx.Response:
    return await env.client.get(path, params=params, headers=auth(env.read))


async def _all_hits(env: Env, **params: Any) -> list[dict[str, Any]]:
    """Every result of a search, following next_cursor."""
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(50):
        response = await _get(env, "/pages", **params, **({"cursor": cursor} if cursor else {}))
        assert response.status_code == 200, response.text
        body = response.json()
        out += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            return out
    raise AssertionError("pagination did not end")


def _expected(pred: Any) -> set[str]:
    return {p.url_hash for p in PAGES if pred(p)}


# -- search -----------------------------------------------------------------------------------


async def test_search_finds_pages_by_a_word_of_their_text_ranked_with_snippets(env: Env) -> None:
    hits = await _all_hits(env, q="quokka", limit=5)
    assert {h["url_hash"] for h in hits} == _expected(lambda p: "quokka" in p.text)
    assert len(hits) == len({h["url_hash"] for h in hits})  # no page twice across pages
    ranks = [h["rank"] for h in hits]
    assert ranks == sorted(ranks, reverse=True) and all(r > 0 for r in ranks)
    assert all("<b>quokka</b>" in h["snippet"] for h in hits)
    # A title word ranks its page (weight A) first among pages that also have it in the text.
    title_hits = await _all_hits(env, q="heron")
    assert [h["url_hash"] for h in title_hits] == [PAGES[7].url_hash]
    # websearch syntax: phrases, or, -word; a query without words finds nothing (not an error).
    assert {h["url_hash"] for h in await _all_hits(env, q='"quokka population" -filler0')} == _expected(
        lambda p: "quokka" in p.text and "filler0" not in p.text
    )
    assert {h["url_hash"] for h in await _all_hits(env, q="heron or quokka")} == _expected(
        lambda p: "quokka" in p.text or p.url_hash == PAGES[7].url_hash
    )
    assert await _all_hits(env, q="!!! ???") == []


async def test_filters_match_the_corpus(env: Env) -> None:
    cases: list[tuple[dict[str, Any], set[str]]] = [
        ({"host": "NEWS.alpha.test"}, _expected(lambda p: p.host == "news.alpha.test")),
        ({"host": "https://beta.test/some/page"}, _expected(lambda p: p.host == "beta.test")),
        ({"domain": "www.alpha.test"}, _expected(lambda p: p.host.endswith("alpha.test"))),
        ({"domain": "bücher.test"}, _expected(lambda p: p.host == "xn--bcher-kva.test")),
        ({"lang": "DE"}, _expected(lambda p: (p.language or (p.lang or "").split("-")[0]) == "de")),
        ({"route": "rich"}, _expected(lambda p: p.route == "rich")),
        ({"batch": "batch-even"}, {p.url_hash for p in PAGES[::2]}),
        ({"batch": "no-such-batch"}, set()),
        (
            {"since": (T0 + timedelta(hours=10)).isoformat(), "until": "2026-03-01T20:00:00"},
            _expected(lambda p: 10 <= int(p.url.rsplit("/", 1)[1]) < 20),
        ),
        (
            {"q": "wombat", "domain": "alpha.test", "batch": "batch-low", "lang": "en"},
            _expected(
                lambda p: (
                    "wombat" in p.text
                    and p.host.endswith("alpha.test")
                    and p in PAGES[:10]
                    and (p.language or (p.lang or "").split("-")[0]) == "en"
                )
            ),
        ),
    ]
    for params, expected in cases:
        hits = await _all_hits(env, limit=7, **params)
        assert {h["url_hash"] for h in hits} == expected, params
        assert len(hits) == len(expected), params


async def test_recent_order_is_newest_first_and_pages_do_not_shift(env: Env) -> None:
    first = await _get(env, "/pages", limit=10)
    body = first.json()
    assert [h["url_hash"] for h in body["items"]] == [p.url_hash for p in reversed(PAGES[-10:])]
    assert body["items"][0]["snippet"] == PAGES[-1].description
    # A newer page stored meanwhile does not move the next page of results.
    newer = dataclasses.replace(
        _page(1000),
        fetched_at=(T0 + timedelta(days=30)).timestamp(),
        processed_at=(T0 + timedelta(days=30)).timestamp(),
    )
    await store_pages(env.store, [newer])
    try:
        second = await _get(env, "/pages", limit=10, cursor=body["next_cursor"])
        assert [h["url_hash"] for h in second.json()["items"]] == [
            p.url_hash for p in reversed(PAGES[-20:-10])
        ]
    finally:
        await env.store.pool.execute("DELETE FROM pages WHERE url_hash = $1", newer.url_hash)


# -- pages and content --------------------------------------------------------------------------


async def test_metadata_by_hash_and_by_url(env: Env) -> None:
    page = PAGES[5]
    by_hash = await _get(env, f"/pages/{page.url_hash}")
    assert by_hash.status_code == 200, by_hash.text
    meta = by_hash.json()
    assert (meta["url"], meta["title"], meta["route"], meta["language"]) == (
        page.url,
        page.title,
        "rich",
        "en",
    )
    assert meta["simhash"] == f"{page.simhash:016x}" and meta["outlinks"] is None
    assert meta["formats"] == {"markdown": True, "text": True, "html": True, "rendered": True, "warc": True}
    assert meta["batches"] == ["batch-low"]  # 5 is odd: not in batch-even
    low = (await _get(env, f"/pages/{PAGES[2].url_hash}", outlinks="true")).json()
    assert set(low["batches"]) == {"batch-even", "batch-low"} and low["outlinks"] == PAGES[2].outlinks
    # by URL: canonicalised like every stored URL (host case, default port, fragment).
    by_url = await _get(
        env,
        "/pages/by-url",
        url=page.url.replace("https://", "HTTPS://").replace(".test/", ".test:443/") + "#x",
    )
    assert by_url.status_code == 200 and by_url.json()["url_hash"] == page.url_hash
    missing = await _get(env, "/pages/by-url", url="https://beta.test/never")
    assert missing.status_code == 404 and "not stored" in missing.json()["error"]["message"]
    assert (await _get(env, "/pages/by-url", url="mailto:someone")).status_code == 422
    assert (await _get(env, f"/pages/{'0' * 32}")).status_code == 404


async def test_content_formats_return_the_stored_bytes(env: Env) -> None:
    page = PAGES[5]  # a rich page: it has a rendered DOM too
    row = await env.store.get_page(page.url_hash)
    assert (
        row is not None
        and row.refs.html is not None
        and row.refs.html.offset is not None
        and row.refs.is_warc
    )  # parts are byte ranges of a WARC object
    path = f"/pages/{page.url_hash}/content"
    markdown = await _get(env, path)
    assert markdown.status_code == 200
    assert markdown.headers["content-type"].startswith("text/markdown")
    assert markdown.content == page.markdown.encode()
    html = await _get(env, path, format="html")
    assert html.content == zstandard.ZstdDecompressor().decompress(page.html_zstd)
    assert html.headers["content-type"].startswith("text/html")
    stored = await env.store.read_part(row.refs.html)  # what S3 holds: one ranged read, a gzipped record
    assert stored is not None and stored[:2] == b"\x1f\x8b"
    rendered = await _get(env, path, format="rendered")
    assert rendered.content == zstandard.ZstdDecompressor().decompress(page.rendered_html_zstd or b"")
    text = await _get(env, path, format="text")
    assert text.text == page.text and text.headers["content-type"].startswith("text/plain")
    # Conditional GET on the part's digest.
    again = await env.client.get(path, headers={**auth(env.read), "If-None-Match": markdown.headers["etag"]})
    assert again.status_code == 304
    # Parts a page does not have: 404 saying why.
    fast = PAGES[0]
    no_dom = await _get(env, f"/pages/{fast.url_hash}/content", format="rendered")
    assert no_dom.status_code == 404 and "rich" in no_dom.json()["error"]["message"]
    warc = await _get(env, path, format="warc")
    assert warc.status_code == 200 and warc.headers["content-type"].startswith("application/warc")
    records = list(ArchiveIterator(io.BytesIO(warc.content)))
    assert [r.rec_type for r in records][:3] == ["request", "response", "metadata"]
    assert records[1].rec_headers.get_header("WARC-Target-URI") == page.url
    unknown = await _get(env, f"/pages/{'a' * 32}/content")
    assert unknown.status_code == 404


# -- batches -----------------------------------------------------------------------------------


async def test_batch_progress_is_the_ledger_model_and_batches_page(env: Env) -> None:
    response = await _get(env, "/batches/batch-low")
    assert response.status_code == 200
    body = response.json()
    conn = await asyncpg.connect(env.settings.postgres.dsn())
    try:
        progress = await read_progress(conn, "batch-low")
    finally:
        await conn.close()
    assert progress is not None
    summary = progress.summary()
    assert {k: body[k] for k in summary if k not in ("duration_s", "pages_per_s")} == {
        k: v for k, v in summary.items() if k not in ("duration_s", "pages_per_s")
    }
    assert body["requested"] == 10 and body["in_flight"] == 10 and body["eta_s"] is None
    assert (await _get(env, "/batches/nope")).status_code == 404
    listed = await _get(env, "/batches", limit=1)
    first = listed.json()
    assert first["items"][0]["batch"] == "batch-low" and first["next_cursor"]
    second = (await _get(env, "/batches", limit=1, cursor=first["next_cursor"])).json()
    assert [b["batch"] for b in second["items"]] == ["batch-even"] and second["next_cursor"] is None
    assert (await _get(env, "/batches", origin="api")).json()["items"] == []


# -- dead letters ---------------------------------------------------------------------------------


async def test_dead_letters_are_listed_with_filters_and_a_cursor(env: Env) -> None:
    batch = f"dlq-{uuid.uuid4().hex[:8]}"
    now = time.time()

    def letter(i: int, stage: str, error_class: str) -> bytes:
        return encode(
            DeadLetter(
                payload=b"x",
                source_topic="raw.page",
                partition=0,
                offset=i,
                stage=stage,
                error_class=error_class,
                error_message=f"failure {i}",
                attempt=1,
                first_failure_at=now,
                last_failure_at=now,
                url=f"https://dead.test/{i}",
                url_hash=url_hash(f"https://dead.test/{i}"),
                batch=batch,
            )
        )

    await produce(
        env.settings.kafka, RAW_PAGE_DLQ, [letter(i, "ingestor", "PermanentFetchError") for i in range(5)]
    )
    await produce(
        env.settings.kafka,
        PROCESSED_DLQ,
        [letter(i, "fast_extractor", "ExtractionError") for i in range(5, 8)],
    )
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        params: dict[str, Any] = {"batch": batch, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        body = (await _get(env, "/dead-letters", **params)).json()
        seen += body["items"]
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert sorted(item["url"] for item in seen) == sorted(f"https://dead.test/{i}" for i in range(8))
    by_class = (await _get(env, "/dead-letters", batch=batch, error_class="ExtractionError", limit=25)).json()
    assert {i["stage"] for i in by_class["items"]} == {"fast_extractor"} and len(by_class["items"]) == 3
    by_stage = (await _get(env, "/dead-letters", batch=batch, stage="ingestor", limit=25)).json()
    assert len(by_stage["items"]) == 5 and by_stage["next_cursor"] is None
    assert by_stage["items"][0]["error"].startswith("failure")
    bad = await _get(env, "/dead-letters", cursor="bm90LWEtY3Vyc29y")
    assert bad.status_code == 422 and "cursor" in bad.json()["error"]["message"]


# -- bad input ----------------------------------------------------------------------------------------


async def test_bad_input_is_a_422_that_says_what_to_fix(env: Env) -> None:
    cases = [
        ({"limit": 26}, "limit"),
        ({"limit": 0}, "limit"),
        ({"q": "x" * 257}, "q"),
        ({"q": "a\x00b"}, "q"),
        ({"order": "relevance"}, "q"),
        ({"cursor": "garbage"}, "cursor"),
        ({"host": "bad host!"}, "host"),
        ({"lang": "english!"}, "lang"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-03-02T00:00:00Z", "until": "2026-03-01T00:00:00Z"}, "since"),
        ({"route": "slow"}, "route"),
        ({"lnag": "en"}, "unknown query parameter 'lnag'"),  # a typo is not silently ignored
    ]
    for params, word in cases:
        response = await _get(env, "/pages", **params)
        assert response.status_code == 422, (params, response.text)
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and word in error["message"], (params, error)
    recent_cursor = (await _get(env, "/pages", limit=1)).json()["next_cursor"]
    mixed = await _get(env, "/pages", q="wombat", cursor=recent_cursor)
    assert mixed.status_code == 422
    assert (await _get(env, "/pages/not-a-hash")).status_code == 422
    assert (await _get(env, f"/pages/{PAGES[0].url_hash}/content", format="pdf")).status_code == 422
    nowhere = await _get(env, "/no/such/route")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == "not_found"


async def test_crawl_submission_is_validated_like_the_cli(env: Env) -> None:
    headers = auth(env.write)
    cases: list[tuple[dict[str, Any], int, str]] = [
        ({"urls": ["https://ok.test/", "mailto:x"]}, 422, "urls[1]"),
        ({"urls": ["https://ok.test/"], "include": ["("]}, 422, "--include"),
        ({"urls": ["https://ok.test/"], "depth": -1}, 422, "depth"),
        ({"urls": ["https://ok.test/"], "scope": "planet"}, 422, "scope"),
        ({"list": "# only a comment\n"}, 422, "nothing to crawl"),
        ({"urls": ["https://ok.test/"], "batch": "batch-low"}, 409, "already exists"),
        ({"urls": ["https://ok.test/"], "unknown": 1}, 422, "unknown"),
    ]
    for body, status, word in cases:
        response = await env.client.post("/crawls", json=body, headers=headers)
        assert response.status_code == status, (body, response.text)
        assert word in response.json()["error"]["message"], (body, response.json())
    too_big = await env.client.post(
        "/crawls",
        content=b'{"list": "' + b"a" * (5 * 1024 * 1024) + b'"}',
        headers={**headers, "Content-Type": "application/json"},
    )
    assert too_big.status_code == 413 and too_big.json()["error"]["code"] == "too_large"


async def test_crawl_submission_publishes_a_batch(env: Env) -> None:
    body = {
        "urls": ["https://submit.test/a", "submit.test/b"],
        "list": "1,submit.test\nnot a url line\nhttps://submit.test/a\n",
        "scheme": "http",
        "depth": 1,
        "scope": "domain",
        "max_pages": 50,
    }
    response = await env.client.post("/crawls", json=body, headers=auth(env.write))
    assert response.status_code == 201, response.text
    out = response.json()
    assert out["batch"].startswith("api-") and response.headers["location"] == f"/batches/{out['batch']}"
    assert (out["listed"], out["published"], out["rejected_count"]) == (3, 3, 1)
    assert out["rejected"][0]["line"] == 2
    progress = (await _get(env, out["progress"])).json()
    assert (progress["origin"], progress["listed"], progress["status"]) == ("api", 3, "published")
    conn = await asyncpg.connect(env.settings.postgres.dsn())
    try:
        scope = await conn.fetchval("SELECT scope FROM crawl_batches WHERE batch = $1", out["batch"])
    finally:
        await conn.close()
    assert '"mode": "domain"' in scope and '"max_depth": 1' in scope and '"max_pages": 50' in scope


# -- access control ---------------------------------------------------------------------------------


async def test_keys_scopes_and_rate_limits_are_enforced(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    client = env.client
    caplog.set_level(logging.INFO, logger="workers.api.access")
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "s3": "ok"}
    for path in ("/pages", f"/pages/{PAGES[0].url_hash}", "/batches", "/dead-letters", "/metrics"):
        none = await client.get(path)
        assert none.status_code == 401 and none.headers["www-authenticate"] == "Bearer", path
        assert "api-key create" in none.json()["error"]["message"]
    forged = env.read[:-4] + "AAAA"
    assert (await client.get("/pages", headers=auth(forged))).status_code == 401
    assert (await client.get("/pages", headers={"Authorization": f"Basic {env.read}"})).status_code == 401
    read_post = await client.post("/crawls", json={"urls": ["https://x.test/"]}, headers=auth(env.read))
    assert read_post.status_code == 403 and "write" in read_post.json()["error"]["message"]
    metrics = await client.get("/metrics", headers=auth(env.read))
    assert metrics.status_code == 200 and "streamcrawl_api_requests_total" in metrics.text

    limited = await make_key(env.settings.postgres, "read", rate_per_s=3)
    statuses = [(await client.get("/batches", headers=auth(limited))).status_code for _ in range(6)]
    assert statuses[:3] == [200, 200, 200] and 429 in statuses[3:]
    over = await client.get("/batches", headers=auth(limited))
    assert over.status_code == 429 and int(over.headers["retry-after"]) >= 1

    conn = await asyncpg.connect(env.settings.postgres.dsn())
    try:
        key_id = key_id_of(limited)
        assert key_id is not None
        await revoke_key(conn, key_id)
        stored = await conn.fetch("SELECT * FROM api_keys")
    finally:
        await conn.close()
    assert (await client.get("/batches", headers=auth(limited))).status_code == 401
    # Hashed at rest, and never in a log line.
    secrets_ = [env.read, env.write, limited]
    assert not any(key in str(dict(row)) for row in stored for key in secrets_)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "key=" in logged and not any(key in logged or key.split("_", 2)[2] in logged for key in secrets_)


async def test_relevance_ranks_the_newest_matches_within_the_window(env: Env) -> None:
    small = env.settings.model_copy(update={"api": env.settings.api.model_copy(update={"rank_window": 5})})
    async with api_client(small) as client:
        response = await client.get("/pages", params={"q": "wombat", "limit": 3}, headers=auth(env.read))
        body = response.json()
        assert body["ranked"] == 5  # of 48 matches: the window is full
        hits = body["items"]
        cursor = body["next_cursor"]
        rest = (
            await client.get("/pages", params={"q": "wombat", "cursor": cursor}, headers=auth(env.read))
        ).json()
    newest = sorted((p for p in PAGES if "wombat" in p.text), key=lambda p: p.fetched_at, reverse=True)[:5]
    assert {h["url_hash"] for h in hits + rest["items"]} == {p.url_hash for p in newest}
    assert rest["next_cursor"] is None
    everything = (await _get(env, "/pages", q="wombat", limit=25)).json()
    assert (
        everything["ranked"] == 48
        and (await _get(env, "/pages", q="wombat", order="recent")).json()["ranked"] is None
    )
