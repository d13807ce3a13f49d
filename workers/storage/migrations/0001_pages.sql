-- One row per URL (keyed by url_hash, the blake2b-128 hex of the normalised URL).
-- List columns (rules, outlinks) are newline-separated text: jsonb parsing cost ~3x the
-- insert rate in measurement, and neither rule names nor URLs contain a newline.
-- Content lives in S3 (layouts: workers/storage/plan.py, keys: workers/storage/objects.py);
-- the *_digest columns hold the blake2b-128 of each object as written, so a redelivery or an
-- unchanged recrawl is recognised and costs no PUT.
CREATE TABLE pages (
    url_hash        text COLLATE "C" PRIMARY KEY,
    url             text NOT NULL,
    host            text NOT NULL,
    final_url       text NOT NULL,
    status          integer NOT NULL,
    route           text NOT NULL,
    score           integer NOT NULL,
    rules           text NOT NULL DEFAULT '',    -- router rule names, newline-separated
    title           text,
    description     text,
    lang            text,
    canonical_url   text,
    published_time  text,
    word_count      integer NOT NULL DEFAULT 0,
    content_hash    text NOT NULL,
    text_hash       text NOT NULL DEFAULT '',
    simhash         bigint NOT NULL DEFAULT 0,   -- unsigned 64-bit simhash stored two's-complement
    outlink_count   integer NOT NULL DEFAULT 0,
    outlinks        text NOT NULL DEFAULT '',    -- absolute deduplicated outlinks, newline-separated
    truncated       boolean NOT NULL DEFAULT false,
    fallback        boolean NOT NULL DEFAULT false,
    skipped         text,
    batch           text,
    rank            integer,
    html_key        text,
    html_digest     text,
    html_offset     bigint,      -- byte range inside a segment object; NULL = whole object
    html_length     bigint,
    markdown_key    text,
    markdown_digest text,
    markdown_offset bigint,
    markdown_length bigint,
    rendered_key    text,
    rendered_digest text,
    rendered_offset bigint,
    rendered_length bigint,
    fetched_at      timestamptz NOT NULL,
    processed_at    timestamptz NOT NULL,
    first_stored_at timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

-- Outlinks are the bulk of a row (~100-300 URLs): lz4 TOAST compression where the server
-- has it (measured ~2x the insert rate of pglz here); the default elsewhere.
DO $$
BEGIN
    ALTER TABLE pages ALTER COLUMN outlinks SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    NULL;
END $$;

CREATE INDEX pages_host_idx ON pages (host);
CREATE INDEX pages_batch_idx ON pages (batch) WHERE batch IS NOT NULL;
