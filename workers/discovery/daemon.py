"""The discovery daemon: outcomes into the ledger, new in-scope links back to ``crawl.request``.

It consumes, in one consumer group:

* ``storage.saved`` — every page the storage writer finished: stored, unchanged (304) or
  skipped (robots, noindex, non-HTML…), with its outlinks;
* ``raw.sitemap`` — robots.txt and sitemap bodies the ingestor read for a ``--sitemaps`` batch;
* ``raw.page.dlq``, ``processed.dlq``, ``storage.dlq`` — every other stage's dead letters.

Why ``storage.saved`` and not ``processed.final``: a page's links are followed once the page
is durably stored (or recorded as skipped), so its outcome and its children enter the ledger in
**one transaction of one writer** — a batch can never look complete between the two — and the
topic carries only links, not page bodies.

Per batch of records, one PostgreSQL transaction records the outcomes (only state changes
count) and admits the new in-scope links through the URL-seen store and the budgets; then the
admitted URLs that are not yet published — including those of a crashed earlier attempt at
the same records — are produced to ``crawl.request`` keyed by host and, once acknowledged,
marked published; only then are the input offsets committed. At-least-once bound: a URL is
published twice only if the daemon dies between the broker's acknowledgement and the
``published`` update right after it (the storage writer's upsert makes the second fetch harmless).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg
from prometheus_client import Counter as PromCounter

from workers.discovery.links import page_links
from workers.discovery.sitemaps import SitemapError, parse_sitemap, robots_sitemaps
from workers.ledger import (
    Candidate,
    Outcome,
    add_reasons,
    admit,
    aux_hash,
    build_requests,
    record_outcomes,
)
from workers.lifecycle import Incoming, Worker
from workers.lifecycle.runner import release_free_heap
from workers.messages import CrawlContext, DeadLetter, RawPage, Scope, StoredPage
from workers.scope import ScopeRules, child_seed
from workers.settings import Settings
from workers.storage.migrate import apply_migrations
from workers.storage.pages import pg_errors
from workers.topics import CRAWL_REQUEST, RAW_SITEMAP, STORAGE_SAVED, Stage
from workers.urls import InvalidURL, canonicalize, host_of, url_hash

__all__ = ["Discovery"]

_TRIM_EVERY_S = 1.0

OUTCOMES = PromCounter("discovery_outcomes_total", "URL outcomes recorded in the ledger", ["state"])
LINKS = PromCounter(
    "discovery_links_total", "Links read from stored pages and sitemaps, by verdict", ["verdict"]
)


@dataclass(slots=True)
class _Found:
    """Candidates of one batch found in this run, and where their context comes from."""

    scope: Scope
    candidates: list[Candidate] = field(default_factory=list)
    parents: dict[str, CrawlContext] = field(default_factory=dict)
    """parent url_hash -> the context its children get (seed, depth, source)."""
    dropped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, str] = field(default_factory=dict)


class Discovery(Worker):
    stage = Stage.DISCOVERY

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.batch_size = settings.discovery.batch_size
        # One batch of records in flight: with several, the working set (each link's
        # candidate, ledger row and request) multiplies while the batches wait for PostgreSQL.
        self.max_in_flight = settings.discovery.batch_size
        self._rules: dict[tuple[str, str], ScopeRules] = {}
        self._pool: asyncpg.Pool | None = None
        self._trimmed_at = 0.0

    async def on_start(self) -> None:
        with pg_errors("connect"):
            self._pool = await asyncpg.create_pool(
                self.settings.postgres.dsn(),
                min_size=1,
                max_size=max(2, self.settings.postgres.pool_size // 2),
            )
        with pg_errors("migration"):
            async with self._pool.acquire() as conn:
                await apply_migrations(conn)

    async def on_stop(self) -> None:
        if self._pool is not None:
            await self._pool.close()

    # -- per record ----------------------------------------------------------------------

    def _rules_for(self, batch: str, scope: Scope) -> ScopeRules:
        key = (batch, repr(scope))
        rules = self._rules.get(key)
        if rules is None:
            if len(self._rules) > 1_000:
                self._rules.clear()
            rules = self._rules[key] = ScopeRules(
                scope, extra_suffixes=self.settings.discovery.extra_suffixes
            )
        return rules

    def _found(self, found: dict[str, _Found], batch: str, scope: Scope) -> _Found:
        entry = found.get(batch)
        if entry is None:
            entry = found[batch] = _Found(scope=scope)
        return entry

    def _page(self, page: StoredPage, outcomes: list[Outcome], found: dict[str, _Found]) -> None:
        if not page.batch:
            return
        state = page.outcome if page.outcome in ("stored", "unchanged", "skipped") else "stored"
        outcomes.append(
            Outcome(
                page.batch,
                page.url_hash,
                state,
                page.reason if state == "skipped" else None,
                route=page.route or None,
                fetched=page.reason not in ("robots", "already_stored"),
                example=page.url,
            )
        )
        ctx = page.ctx
        if ctx is None or ctx.scope is None or ctx.scope.max_depth <= ctx.depth:
            return
        links = page_links(page, self._rules_for(page.batch, ctx.scope))
        entry = self._found(found, page.batch, ctx.scope)
        entry.candidates += links.candidates
        entry.parents[page.url_hash] = CrawlContext(
            depth=ctx.depth + 1, seed=links.seed, source="link", parent=page.url_hash, scope=ctx.scope
        )
        entry.dropped.update(links.dropped)
        for reason, url in links.examples.items():
            entry.examples.setdefault(reason, url)
        LINKS.labels("candidate").inc(len(links.candidates))
        for reason, n in links.dropped.items():
            LINKS.labels(reason).inc(n)

    def _letter(self, letter: DeadLetter, outcomes: list[Outcome]) -> None:
        if not letter.batch or not letter.url_hash:
            return
        outcomes.append(
            Outcome(
                letter.batch,
                letter.url_hash,
                "dead",
                letter.error_class,
                fetched=letter.source_topic != CRAWL_REQUEST.name,
                example=f"{letter.url or ''} — {letter.error_message[:160]}",
            )
        )

    def _sitemap(self, raw: RawPage, outcomes: list[Outcome], found: dict[str, _Found]) -> None:
        if not raw.batch:
            return
        ctx = raw.ctx or CrawlContext(seed=raw.host, scope=Scope())
        scope = ctx.scope or Scope()
        entry = self._found(found, raw.batch, scope)
        d = self.settings.discovery
        try:
            body = raw.html_bytes()
            if raw.kind == "robots":
                pages: list[str] = []
                sitemaps = robots_sitemaps(body)
            else:
                parsed = parse_sitemap(body, max_bytes=d.max_sitemap_bytes, max_urls=d.max_sitemap_urls)
                pages, sitemaps = parsed.pages, parsed.sitemaps
                if parsed.truncated:
                    entry.dropped["sitemap_truncated"] += 1
        except (SitemapError, ValueError) as exc:
            outcomes.append(
                Outcome(raw.batch, raw.url_hash, "dead", "SitemapError", example=f"{raw.url} — {exc}")
            )
            return
        outcomes.append(Outcome(raw.batch, raw.url_hash, "stored", None, example=raw.url))
        seed = ctx.seed or raw.host
        rules = self._rules_for(raw.batch, scope)
        # Sitemap entries are seeds of the batch (depth 0 below a listed host), robots/sitemap reads not pages.
        entry.parents[raw.url_hash] = CrawlContext(
            depth=ctx.depth, seed=seed, source="sitemap", parent=raw.url_hash, scope=scope
        )
        for link in sitemaps:
            try:
                url = canonicalize(link)
            except InvalidURL:
                entry.dropped["invalid_url"] += 1
                continue
            entry.candidates.append(
                Candidate(
                    url, aux_hash("sitemap", url), host_of(url), ctx.depth, "sitemap", "sitemap", raw.url_hash
                )
            )
        for link in pages:
            try:
                url = canonicalize(link)
            except InvalidURL:
                entry.dropped["invalid_url"] += 1
                continue
            host = host_of(url)
            reason = rules.reject(
                url, host, seed=child_seed(ctx, parent_host=seed, final_host=seed), depth=ctx.depth
            )
            if reason is not None:
                entry.dropped[reason] += 1
                entry.examples.setdefault(reason, url)
                continue
            entry.candidates.append(
                Candidate(url, url_hash(url), host, ctx.depth, "page", "sitemap", raw.url_hash)
            )

    # -- per batch of records ------------------------------------------------------------

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        """Record and follow ``batch`` in transactions of about ``links_per_transaction`` links.

        A page's outcome and its children always share one transaction; a transaction ends
        after the page that takes it past the link bound, so the daemon's working set (the
        candidates, their ledger rows and their requests) is bounded by links, not by pages
        times however many links each page has."""
        outcomes: list[Outcome] = []
        found: dict[str, _Found] = {}
        bound = self.settings.discovery.links_per_transaction
        for item in batch:
            topic = item.record.topic
            if topic == STORAGE_SAVED.name:
                page = await self.decode_or_dead_letter(item, StoredPage)
                if page is not None:
                    self._page(page, outcomes, found)
            elif topic == RAW_SITEMAP.name:
                raw = await self.decode_or_dead_letter(item, RawPage)
                if raw is not None:
                    self._sitemap(raw, outcomes, found)
            else:
                letter = await self.decode_or_dead_letter(item, DeadLetter)
                if letter is not None:
                    self._letter(letter, outcomes)
            if sum(len(e.candidates) for e in found.values()) >= bound:
                await self._flush(outcomes, found, source=item)
                outcomes, found = [], {}
        if outcomes or found:
            await self._flush(outcomes, found, source=batch[0])
        now = time.monotonic()
        if now - self._trimmed_at >= _TRIM_EVERY_S:
            # Each batch allocates and frees ~40 objects per link; without handing the freed
            # pages back, RSS crept up ~20 % over 1M URLs (BENCHMARKS.md, discovery).
            self._trimmed_at = now
            release_free_heap()

    async def _flush(self, outcomes: list[Outcome], found: dict[str, _Found], *, source: Incoming) -> None:
        pending = await self._record(outcomes, found)
        for batch_id, rows in pending.items():
            await self._publish(batch_id, rows, found[batch_id], source=source)

    async def _record(
        self, outcomes: list[Outcome], found: dict[str, _Found]
    ) -> dict[str, list[asyncpg.Record]]:
        """One transaction: outcomes, admissions, and the unpublished children to send."""
        assert self._pool is not None
        pending: dict[str, list[asyncpg.Record]] = {}
        with pg_errors("ledger update"):
            async with self._pool.acquire() as conn, conn.transaction():
                moved = await record_outcomes(conn, outcomes)
                for m in moved:
                    OUTCOMES.labels(m.new.state).inc()
                known = {
                    r["batch"]
                    for r in await conn.fetch(
                        "SELECT batch FROM crawl_batches WHERE batch = ANY($1::text[])", list(found)
                    )
                }
                for batch_id, entry in found.items():
                    if batch_id not in known:
                        continue
                    admission = await admit(
                        conn,
                        batch=batch_id,
                        scope=entry.scope,
                        candidates=entry.candidates,
                        max_aux_per_host=self.settings.discovery.max_sitemaps_per_host,
                    )
                    dropped = Counter(entry.dropped)
                    dropped.update(admission.refused)
                    await add_reasons(
                        conn,
                        batch_id,
                        "dropped",
                        {r: (n, entry.examples.get(r)) for r, n in dropped.items()},
                    )
                    LINKS.labels("admitted").inc(len(admission.admitted))
                    LINKS.labels("seen").inc(admission.seen)
                    pending[batch_id] = await conn.fetch(
                        "SELECT url_hash, url, host, kind, depth, source, parent, rank, request_id"
                        " FROM crawl_urls WHERE batch = $1 AND NOT published AND parent = ANY($2::text[])",
                        batch_id,
                        list(entry.parents),
                    )
        return pending

    async def _publish(
        self, batch_id: str, rows: list[asyncpg.Record], entry: _Found, *, source: Incoming
    ) -> None:
        if not rows:
            return
        admitted = []
        seeds: dict[str, str] = {}
        for r in rows:
            parent_ctx = entry.parents[r["parent"]]
            seeds[r["url_hash"]] = parent_ctx.seed
            admitted.append(
                (
                    Candidate(
                        r["url"],
                        r["url_hash"],
                        r["host"],
                        r["depth"],
                        r["kind"],
                        r["source"],
                        r["parent"],
                        r["rank"],
                    ),
                    r["request_id"],
                )
            )
        requests = build_requests(batch_id, entry.scope, admitted, recrawl=False, seed_of=seeds)
        await self.emit_and_wait(CRAWL_REQUEST, [(req, req.host.encode()) for req in requests], source=source)
        assert self._pool is not None
        # If this fails, the records were published but not marked: a redelivery of the same
        # input publishes them again (the at-least-once bound in the module doc).
        with pg_errors("publish mark"):
            await self._pool.execute(
                "UPDATE crawl_urls SET published = true WHERE batch = $1 AND url_hash = ANY($2::text[])",
                batch_id,
                [r.url_hash for r in requests],
            )
