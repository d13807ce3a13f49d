-- Full-text search over the corpus, for the read API (workers/api/search.py).
--
-- `text` (plain main text, WET-like) and `language` (detected language) are written by the
-- storage writer from ProcessedPage.text / .language; IF NOT EXISTS because the storage
-- workstream's own migration may add them first.
ALTER TABLE pages ADD COLUMN IF NOT EXISTS text text;
ALTER TABLE pages ADD COLUMN IF NOT EXISTS language text;

-- The search vector: title (weight A) + the first 100,000 characters of text (weight B), in
-- the 'simple' configuration (lower-cased words, no stemming, no stop words: the corpus is
-- multilingual and one language's stemmer mangles the others). Capped because a tsvector
-- cannot exceed 1 MB: an uncapped 5 MB page would make the storage writer's UPSERT fail.
CREATE OR REPLACE FUNCTION pages_search_vector(title text, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple', coalesce(title, '')), 'A')
        || setweight(to_tsvector('simple', left(coalesce(body, ''), 100000)), 'B')
$$;

-- It lives in its own table, one row per page, with the GIN index, kept by triggers that fire
-- only when a page is inserted or its title or text change. Not a column of `pages` (generated
-- or trigger-maintained): every rewrite of a pages row that is not a HOT update -- each
-- redelivery and recrawl the storage writer UPSERTs, each 304 that moves fetched_at -- inserts a
-- new entry for every lexeme of the row into a GIN index on `pages`, whether the text changed
-- or not. Measured on the storage writer's UPSERT (bench/stage_api.py): a redelivery and a
-- fetched_at-only update cost 4-6x more with the vector in `pages`, the same as without any
-- search vector with it here; inserting new pages costs the same either way.
CREATE TABLE IF NOT EXISTS page_search (
    url_hash text COLLATE "C" PRIMARY KEY REFERENCES pages (url_hash) ON DELETE CASCADE ON UPDATE CASCADE,
    search   tsvector NOT NULL
);

CREATE OR REPLACE FUNCTION pages_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO page_search (url_hash, search) VALUES (NEW.url_hash, pages_search_vector(NEW.title, NEW.text))
    ON CONFLICT (url_hash) DO UPDATE SET search = EXCLUDED.search;
    RETURN NULL;
END
$$;

DROP TRIGGER IF EXISTS pages_search_insert ON pages;
CREATE TRIGGER pages_search_insert AFTER INSERT ON pages
    FOR EACH ROW EXECUTE FUNCTION pages_search_sync();
DROP TRIGGER IF EXISTS pages_search_update ON pages;
CREATE TRIGGER pages_search_update AFTER UPDATE OF title, text ON pages
    FOR EACH ROW WHEN (OLD.title IS DISTINCT FROM NEW.title OR OLD.text IS DISTINCT FROM NEW.text)
    EXECUTE FUNCTION pages_search_sync();

INSERT INTO page_search (url_hash, search)
SELECT url_hash, pages_search_vector(title, text) FROM pages
ON CONFLICT (url_hash) DO NOTHING;

CREATE INDEX IF NOT EXISTS page_search_idx ON page_search USING gin (search);
-- 10x the default statistics: the planner then knows rare words from common ones (with the
-- default it took a one-page word for a 0.5 % one and walked the whole newest-first index:
-- 2.4 s instead of 1 ms at 100k pages).
ALTER TABLE page_search ALTER COLUMN search SET STATISTICS 1000;

-- Newest first (and since/until) with keyset pagination on (fetched_at, url_hash).
CREATE INDEX IF NOT EXISTS pages_fetched_idx ON pages (fetched_at, url_hash);
-- domain=example.com: hosts equal to it or ending in .example.com, as a prefix of the reversed
-- '.'-prefixed host (an index range scan instead of a leading-wildcard LIKE).
CREATE INDEX IF NOT EXISTS pages_rdomain_idx ON pages (reverse('.' || host) text_pattern_ops);
-- (No index for lang=: a handful of languages cover most pages, so it would rarely be chosen,
-- and every index is one more entry per row rewrite for the storage writer.)
-- GET /batches: newest first.
CREATE INDEX IF NOT EXISTS crawl_batches_created_idx ON crawl_batches (created_at, batch);
