"""Publishing a batch: the one path the CLI, Dagster's frontier, the API and the demo share.

1. the batch row is created with its scope (``publishing``);
2. per chunk of listed URLs, in one transaction: URLs already stored are recorded as
   skipped (``already_stored``) unless ``recrawl`` (then the stored copy's ETag and
   Last-Modified go with the request, for a conditional fetch); the rest are admitted
   through the URL-seen store and its budgets; with ``sitemaps``, each new host's
   robots.txt and /sitemap.xml are admitted as reads for the discovery stage;
3. the chunk's ``crawl.request`` records are produced keyed by host and, once every one is
   acknowledged, marked published;
4. the batch is marked ``published``: from then on it completes when nothing is in flight.

A crash between 2 and 3 leaves admitted-but-unpublished rows: :func:`republish` sends them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from workers.frontier import ListEntry, publish_requests
from workers.ledger.admission import Admission, Candidate, add_reasons, admit
from workers.ledger.batches import BatchSpec, create_batch, mark_published, scope_from_json
from workers.ledger.outcomes import Outcome, record_outcomes
from workers.messages import CrawlContext, CrawlRequest, Scope
from workers.settings import KafkaSettings
from workers.storage.migrate import apply_migrations
from workers.urls import host_of, url_hash

__all__ = [
    "PublishResult",
    "aux_hash",
    "build_requests",
    "publish_batch",
    "republish",
    "stored_validators",
]

_CHUNK = 10_000


def aux_hash(kind: str, url: str) -> str:
    """Ledger key of a robots.txt or sitemap read (kept apart from the page of the same URL)."""
    return url_hash(f"{kind} {url}")


@dataclass(slots=True)
class PublishResult:
    batch: str
    listed: int = 0
    admitted: int = 0
    already_stored: int = 0
    refused: dict[str, int] = field(default_factory=dict)
    aux: int = 0
    published: int = 0


async def stored_validators(
    conn: asyncpg.Connection, hashes: Sequence[str]
) -> dict[str, tuple[str | None, str | None]]:
    """``{url_hash: (etag, last_modified)}`` of the hashes that have a stored page."""
    has_validators = await conn.fetchval(
        "SELECT count(*) = 2 FROM information_schema.columns"
        " WHERE table_name = 'pages' AND column_name IN ('etag', 'last_modified')"
    )
    if has_validators:
        rows = await conn.fetch(
            "SELECT url_hash, etag, last_modified FROM pages WHERE url_hash = ANY($1::text[])", list(hashes)
        )
        return {r["url_hash"]: (r["etag"], r["last_modified"]) for r in rows}
    rows = await conn.fetch("SELECT url_hash FROM pages WHERE url_hash = ANY($1::text[])", list(hashes))
    return {r["url_hash"]: (None, None) for r in rows}


def build_requests(
    batch: str,
    scope: Scope,
    admitted: Sequence[tuple[Candidate, str]],
    *,
    recrawl: bool,
    validators: dict[str, tuple[str | None, str | None]] | None = None,
    seed_of: dict[str, str] | None = None,
) -> list[CrawlRequest]:
    """The ``crawl.request`` records of admitted candidates."""
    now = time.time()
    out = []
    for c, request_id in admitted:
        etag, modified = (validators or {}).get(c.url_hash, (None, None))
        out.append(
            CrawlRequest(
                url=c.url,
                url_hash=c.url_hash,
                host=c.host,
                requested_at=now,
                batch=batch,
                rank=c.rank,
                recrawl=recrawl,
                kind=c.kind,
                ctx=CrawlContext(
                    depth=c.depth,
                    seed=(seed_of or {}).get(c.url_hash, c.host),
                    source=c.source,
                    parent=c.parent,
                    scope=scope,
                ),
                etag=etag,
                last_modified=modified,
                request_id=request_id,
            )
        )
    return out


def _origin(url: str) -> str:
    """``scheme://host[:port]`` of a canonical URL."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _aux_candidates(hosts: dict[str, str]) -> list[Candidate]:
    """robots.txt and /sitemap.xml reads of each host (``{host: scheme://host[:port]}``)."""
    out = []
    for host, origin in hosts.items():
        for kind, url in (("robots", f"{origin}/robots.txt"), ("sitemap", f"{origin}/sitemap.xml")):
            out.append(
                Candidate(url=url, url_hash=aux_hash(kind, url), host=host, kind=kind, source="sitemap")
            )
    return out


async def _mark_published(conn: asyncpg.Connection, batch: str, hashes: list[str]) -> None:
    await conn.execute(
        "UPDATE crawl_urls SET published = true WHERE batch = $1 AND url_hash = ANY($2::text[])",
        batch,
        hashes,
    )


async def publish_batch(
    conn: asyncpg.Connection,
    kafka: KafkaSettings,
    spec: BatchSpec,
    entries: Sequence[ListEntry],
) -> PublishResult:
    """Create ``spec.batch`` and publish ``entries`` (canonical URLs) into it; see the module doc."""
    await apply_migrations(conn)
    await create_batch(conn, spec)
    result = PublishResult(batch=spec.batch, listed=len(entries))
    seen_hosts: set[str] = set()
    for start in range(0, len(entries), _CHUNK):
        chunk = entries[start : start + _CHUNK]
        candidates = [
            Candidate(url=e.url, url_hash=url_hash(e.url), host=host_of(e.url), rank=e.rank) for e in chunk
        ]
        async with conn.transaction():
            stored = await stored_validators(conn, [c.url_hash for c in candidates])
            validators = stored if spec.recrawl else {}
            todo = candidates if spec.recrawl else [c for c in candidates if c.url_hash not in stored]
            skip = [] if spec.recrawl else [c for c in candidates if c.url_hash in stored]
            admission = await admit(conn, batch=spec.batch, scope=spec.scope, candidates=[*todo, *skip])
            skipped_hashes = {c.url_hash for c in skip}
            if skip:
                await record_outcomes(
                    conn,
                    [
                        Outcome(
                            spec.batch, c.url_hash, "skipped", "already_stored", fetched=False, example=c.url
                        )
                        for c, _ in admission.admitted
                        if c.url_hash in skipped_hashes
                    ],
                )
            aux: Admission | None = None
            if spec.sitemaps:
                origins = {}
                for c in todo:
                    if c.host not in seen_hosts:
                        seen_hosts.add(c.host)
                        origins[c.host] = _origin(c.url)
                aux = await admit(
                    conn, batch=spec.batch, scope=spec.scope, candidates=_aux_candidates(origins)
                )
            refused = dict(admission.refused)
            if refused:
                await add_reasons(conn, spec.batch, "dropped", {r: (n, None) for r, n in refused.items()})
        to_send = [(c, rid) for c, rid in admission.admitted if c.url_hash not in skipped_hashes]
        if aux is not None:
            to_send += aux.admitted
            result.aux += len(aux.admitted)
        requests = build_requests(
            spec.batch, spec.scope, to_send, recrawl=spec.recrawl, validators=validators
        )
        result.published += await publish_requests(kafka, requests)
        await _mark_published(conn, spec.batch, [r.url_hash for r in requests])
        result.admitted += len(admission.admitted) - len(skip)
        result.already_stored += len(skip)
        for r, n in refused.items():
            result.refused[r] = result.refused.get(r, 0) + n
    await mark_published(conn, spec.batch)
    return result


async def republish(conn: asyncpg.Connection, kafka: KafkaSettings, batch: str) -> int:
    """Publish the listed rows of ``batch`` that were admitted but never acknowledged."""
    row = await conn.fetchrow("SELECT scope, recrawl FROM crawl_batches WHERE batch = $1", batch)
    if row is None:
        return 0
    rows = await conn.fetch(
        "SELECT url_hash, url, host, kind, depth, source, parent, rank, request_id FROM crawl_urls"
        " WHERE batch = $1 AND NOT published AND parent IS NULL AND state = 'queued'",
        batch,
    )
    admitted = [
        (
            Candidate(
                r["url"], r["url_hash"], r["host"], r["depth"], r["kind"], r["source"], r["parent"], r["rank"]
            ),
            r["request_id"],
        )
        for r in rows
    ]
    requests = build_requests(batch, scope_from_json(row["scope"]), admitted, recrawl=row["recrawl"])
    sent = await publish_requests(kafka, requests)
    await _mark_published(conn, batch, [r.url_hash for r in requests])
    await mark_published(conn, batch)
    return sent
