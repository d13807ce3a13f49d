"""Exact and near-duplicate flags (``pages.duplicate_of``), computed right after a write.

A stored page is a duplicate of an *original* (a row with ``duplicate_of IS NULL``) stored
before it — ordered by ``(first_stored_at, url_hash)``, so two copies never point at each
other — when

* **exact**: the same ``text_hash`` (blake2b of the normalised main text), text not empty; or
* **near**: both have at least ``NEAR_MIN_WORDS`` words and their 64-bit SimHashes (the
  extractor's, over the text's distinct words) differ in at most
  ``StorageSettings.near_duplicate_distance`` bits (default 6).

``duplicate_of`` is the url_hash of the earliest such original. Nothing is deleted: exports
drop flagged rows on request (``--dedup``). The flags are recomputed for every page each time
it is written; a batch's pages see each other (the statement runs after the batch's rows are
in), so copies inside one batch are caught as well as copies of the stored corpus.

Cost per page is bounded by indexes, not by the corpus: one lookup on ``text_hash`` and four
on 16-bit bands of the SimHash (partial indexes over originals, migration 0010), then the
Hamming distance of the few candidates. A band bucket holds ~N/65,536 originals (~2 at 100k
pages, ~15 at 1M). Sharing a band is guaranteed within distance 3 (pigeonhole) and likely up to
6. Measured once on near copies of the 96 longer articles of the readability set: with 1% of
the words edited, 95% of the copies are within distance 6 (75% within 3); with a navigation
header and footer added, 80% (44%); the only pairs of distinct test pages within 6 bits are
near copies by MinHash as well (Jaccard >= 0.75). MinHash (FineWeb's 5-grams, 112
permutations, datasketch) caught more of the copies with 3-10% of the words edited but cost
~3.4 ms of CPU per page: more than the writer's whole budget per page. bench/stage_storage.py
re-measures the SimHash side.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import asyncpg

from workers.storage.pages import pg_errors

__all__ = ["NEAR_MIN_WORDS", "mark_duplicates"]

NEAR_MIN_WORDS = 50
"""Shorter texts are compared exactly only (SimHash of a few words is noise). Fixed: the
partial indexes of migration 0010 use the same constant."""

_BANDS = (
    "((c.simhash >> 48) & 65535) = ((n.simhash >> 48) & 65535)",
    "((c.simhash >> 32) & 65535) = ((n.simhash >> 32) & 65535)",
    "((c.simhash >> 16) & 65535) = ((n.simhash >> 16) & 65535)",
    "(c.simhash & 65535) = (n.simhash & 65535)",
)
_ORIGINAL = "c.duplicate_of IS NULL AND c.skipped IS NULL AND c.url_hash <> n.url_hash"
_EARLIER = "(c.first_stored_at, c.url_hash) < (n.first_stored_at, n.url_hash)"
_ARMS = [
    f"SELECT c.url_hash, c.first_stored_at FROM pages c WHERE c.text_hash = n.text_hash"
    f" AND c.word_count > 0 AND n.word_count > 0 AND {_ORIGINAL} AND {_EARLIER}",
    *(
        f"SELECT c.url_hash, c.first_stored_at FROM pages c WHERE {band}"
        f" AND c.word_count >= {NEAR_MIN_WORDS} AND n.word_count >= {NEAR_MIN_WORDS}"
        f" AND {_ORIGINAL} AND {_EARLIER}"
        " AND bit_count((c.simhash # n.simhash)::bit(64)) <= $2"
        for band in _BANDS
    ),
]
MARK_SQL = (
    "WITH n AS (SELECT url_hash, text_hash, simhash, word_count, first_stored_at, duplicate_of"
    " FROM pages WHERE url_hash = ANY($1::text[]) AND skipped IS NULL),\n"
    "m AS (SELECT n.url_hash, n.duplicate_of AS before, d.url_hash AS dup FROM n LEFT JOIN LATERAL (\n  "
    + "\n  UNION ALL\n  ".join(f"({arm})" for arm in _ARMS)
    + "\n  ORDER BY first_stored_at, url_hash LIMIT 1) d ON true)\n"
    "UPDATE pages p SET duplicate_of = m.dup FROM m"
    " WHERE p.url_hash = m.url_hash AND m.before IS DISTINCT FROM m.dup RETURNING p.url_hash, p.duplicate_of"
)


async def mark_duplicates(
    conn: asyncpg.Connection | asyncpg.Pool, url_hashes: Sequence[str], *, max_distance: int
) -> dict[str, str | None]:
    """Recompute ``duplicate_of`` for these rows; returns the rows whose flag changed."""
    if not url_hashes:
        return {}
    with pg_errors(f"duplicate check of {len(url_hashes)} pages"):
        async with _connection(conn) as c, c.transaction():
            # The plan must be the per-row index lookups whatever the statistics say: on a table
            # not analysed yet the planner picked sequential scans (cost growing with the table,
            # 23 s for 200 pages at 20k rows), and its high estimate triggered JIT compilation
            # (~0.4-2 s per statement) for a query that runs in ~12 ms.
            await c.execute("SET LOCAL enable_seqscan = off; SET LOCAL jit = off")
            rows = await c.fetch(MARK_SQL, list(url_hashes), max_distance)
    return {r["url_hash"]: r["duplicate_of"] for r in rows}


@contextlib.asynccontextmanager
async def _connection(conn: asyncpg.Connection | asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as c:
            yield c
    else:
        yield conn
