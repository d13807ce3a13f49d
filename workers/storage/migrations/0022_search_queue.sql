-- Numbered after 0020 (the api range) because it amends 0020's trigger function: a number in
-- the storage range (0011-0019) would run before 0020 on a new database and be overwritten by it.
--
-- The search vector (migration 0020's page_search) is computed off the storage writer's write
-- path: the triggers on `pages` now only queue the url_hash of a page that was inserted or whose
-- title or text changed, and page_search_index() turns up to `max_rows` queued pages into their
-- vectors in one statement. The storage writer runs it in the background after its writes
-- (workers/storage/search_index.py), so search sees a page shortly after it is stored.
--
-- Why: computing the vector (the 'simple' parser over the text) and its GIN entries inside the
-- UPSERT cost the writer's statement ~0.9 ms of PostgreSQL CPU per new page, 4-5x the UPSERT
-- alone (measured on the readability pages, ~4 KB of text each: 4,800 vs 900-1,100 rows/s), and
-- one trigger call per row. Queueing a hash costs a small fraction of that; the vectors are
-- built in batches, when the writer has an idle moment (see the module), with the same
-- function (pages_search_vector) and the same change rule as before (a redelivery, a 304 or a
-- recrawl with the same title and text queue nothing).
--
-- Crash safety: the queue row is written in the same transaction as the page row, and a batch
-- of the indexer deletes its queue rows in the same statement that writes their vectors, so a
-- crash at any point leaves either the queue row or the vector (never neither).
CREATE TABLE IF NOT EXISTS page_search_queue (
    url_hash  text COLLATE "C" PRIMARY KEY
);

CREATE OR REPLACE FUNCTION pages_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO page_search_queue (url_hash) VALUES (NEW.url_hash) ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

-- Index up to max_rows queued pages; returns how many queue rows it took (pages deleted since
-- they were queued just leave the queue). SKIP LOCKED: several writers index side by side.
-- Both lookups go through `= ANY(array)` so they stay primary-key probes whatever the
-- statistics say (a join was planned as a sequential scan of `pages`: cost growing with the
-- table, not with the batch).
CREATE OR REPLACE FUNCTION page_search_index(max_rows integer) RETURNS integer
    LANGUAGE sql AS $$
    WITH picked AS (
        DELETE FROM page_search_queue
        WHERE url_hash = ANY (ARRAY(SELECT url_hash FROM page_search_queue LIMIT max_rows FOR UPDATE SKIP LOCKED))
        RETURNING url_hash
    ), written AS (
        INSERT INTO page_search (url_hash, search)
        SELECT p.url_hash, pages_search_vector(p.title, p.text) FROM pages p
        WHERE p.url_hash = ANY (ARRAY(SELECT url_hash FROM picked))
        ON CONFLICT (url_hash) DO UPDATE SET search = EXCLUDED.search
        RETURNING 1
    )
    SELECT count(*)::integer FROM picked
$$;
