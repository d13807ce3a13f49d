"""Rehash stored pages with the one canonicalisation (workers.urls.canonicalize).

Earlier versions hashed URLs normalised by two different functions (IDNA applied in one
path only, query order kept, tracking parameters kept). Each row's ``url`` is canonicalised
again; when its hash changes the row (and its ledger rows) move to the new hash. When two
rows collapse onto one URL the most recently fetched one is kept; the other row is deleted
(its objects become orphans that ``streamcrawl fsck --repair`` collects). A URL that cannot
be canonicalised keeps its row and hash.
"""

from __future__ import annotations

import asyncpg

from workers.urls import InvalidURL, canonicalize, url_hash

_CHUNK = 5_000


async def migrate(conn: asyncpg.Connection) -> None:
    moves: list[tuple[str, str, str]] = []  # (old hash, new hash, canonical url)
    async for record in conn.cursor("SELECT url_hash, url FROM pages ORDER BY url_hash", prefetch=_CHUNK):
        try:
            canonical = canonicalize(record["url"])
        except InvalidURL:
            continue
        new = url_hash(canonical)
        if new != record["url_hash"] or canonical != record["url"]:
            moves.append((record["url_hash"], new, canonical))
    if not moves:
        return
    await conn.execute(
        'CREATE TEMP TABLE rehash (old text COLLATE "C", new text COLLATE "C", url text) ON COMMIT DROP'
    )
    await conn.copy_records_to_table("rehash", records=moves, columns=["old", "new", "url"])
    # Keep one row per new hash: the most recently fetched among the rows that map onto it
    # (including a row that already has that hash and is not itself moving).
    await conn.execute(
        """
        DELETE FROM pages p USING (
            SELECT url_hash FROM (
                SELECT c.url_hash, row_number() OVER (
                    PARTITION BY c.new ORDER BY c.fetched_at DESC, c.url_hash) AS rn
                FROM (
                    SELECT p.url_hash, coalesce(r.new, p.url_hash) AS new, p.fetched_at
                    FROM pages p LEFT JOIN rehash r ON r.old = p.url_hash
                    WHERE r.old IS NOT NULL OR p.url_hash IN (SELECT new FROM rehash)
                ) c
            ) ranked WHERE rn > 1
        ) loser WHERE p.url_hash = loser.url_hash
        """
    )
    await conn.execute(
        "UPDATE pages p SET url_hash = r.new, url = r.url FROM rehash r WHERE p.url_hash = r.old"
    )
    await conn.execute(
        "UPDATE crawl_urls u SET url_hash = r.new, url = r.url FROM rehash r"
        " WHERE u.url_hash = r.old AND NOT EXISTS ("
        "   SELECT 1 FROM crawl_urls o WHERE o.batch = u.batch AND o.url_hash = r.new)"
    )
