-- Full-text search over the corpus, for the read API (workers/api/search.py).
--
-- `text` (plain main text, WET-like) and `language` (detected language) are written by the
-- storage writer from ProcessedPage.text / .language; IF NOT EXISTS because the storage
-- workstream's own migration may add them first.
ALTER TABLE pages ADD COLUMN IF NOT EXISTS text text;
ALTER TABLE pages ADD COLUMN IF NOT EXISTS language text;

-- `search`: title (weight A) + the first 100,000 characters of text (weight B), 'simple'
-- configuration (lower-cased words, no stemming, no stop words: the corpus is multilingual and
-- one language's stemmer mangles the others). Capped because a tsvector cannot exceed 1 MB: an
-- uncapped 5 MB page would make the storage writer's UPSERT fail.
--
-- Maintained by a BEFORE trigger rather than a generated column: the storage writer's UPSERT
-- rewrites every column of a row on each redelivery and recrawl, and a stored generated column
-- is recomputed on every such write; the trigger keeps the old vector when title and text are
-- unchanged (bench/stage_api.py measures both on that UPSERT).
ALTER TABLE pages ADD COLUMN IF NOT EXISTS search tsvector;

CREATE OR REPLACE FUNCTION pages_search_vector(title text, body text) RETURNS tsvector
    LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT setweight(to_tsvector('simple', coalesce(title, '')), 'A')
        || setweight(to_tsvector('simple', left(coalesce(body, ''), 100000)), 'B')
$$;

CREATE OR REPLACE FUNCTION pages_search_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.title IS NOT DISTINCT FROM OLD.title
            AND NEW.text IS NOT DISTINCT FROM OLD.text AND OLD.search IS NOT NULL THEN
        NEW.search := OLD.search;
    ELSE
        NEW.search := pages_search_vector(NEW.title, NEW.text);
    END IF;
    RETURN NEW;
END
$$;

DROP TRIGGER IF EXISTS pages_search_trigger ON pages;
CREATE TRIGGER pages_search_trigger BEFORE INSERT OR UPDATE OF title, text ON pages
    FOR EACH ROW EXECUTE FUNCTION pages_search_update();

UPDATE pages SET search = pages_search_vector(title, text) WHERE search IS NULL;

CREATE INDEX IF NOT EXISTS pages_search_idx ON pages USING gin (search);
-- Newest first (and since/until) with keyset pagination on (fetched_at, url_hash).
CREATE INDEX IF NOT EXISTS pages_fetched_idx ON pages (fetched_at, url_hash);
-- domain=example.com: hosts equal to it or ending in .example.com, as a prefix of the reversed
-- '.'-prefixed host (an index range scan instead of a leading-wildcard LIKE).
CREATE INDEX IF NOT EXISTS pages_rdomain_idx ON pages (reverse('.' || host) text_pattern_ops);
-- lang=xx: the detected language, else the primary subtag of the declared one (<html lang>).
CREATE INDEX IF NOT EXISTS pages_language_idx ON pages ((lower(split_part(coalesce(language, lang), '-', 1))));
