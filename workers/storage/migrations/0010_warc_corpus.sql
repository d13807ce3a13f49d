-- The WARC layout and the corpus columns (workers/storage/__init__.py documents both).
--
-- Rows written from now on keep their content as gzipped WARC 1.1 records packed into
-- append-only objects under warc/: html_* is the page's `response` record, markdown_*,
-- text_* and rendered_* its `conversion` records, each a byte range of warc_key; warc_offset /
-- warc_length span the page's whole run of records (request, response, metadata,
-- conversions). Rows of the first build (warc_key IS NULL) keep pointing at their objects
-- under pages/ or segments/ and stay readable.
--
-- Every column is added with a constant default or NULL: a metadata-only change, instant on
-- a table of any size.
ALTER TABLE pages
    ADD COLUMN warc_key        text,
    ADD COLUMN warc_offset     bigint,
    ADD COLUMN warc_length     bigint,
    ADD COLUMN text_key        text,
    ADD COLUMN text_digest     text,
    ADD COLUMN text_offset     bigint,
    ADD COLUMN text_length     bigint,
    ADD COLUMN language        text,                     -- detected language of the main text
    ADD COLUMN language_score  real,
    ADD COLUMN quality         jsonb,                    -- extraction signals (small dict)
    ADD COLUMN quality_flags   text NOT NULL DEFAULT '', -- newline-separated reasons
    ADD COLUMN robots          text NOT NULL DEFAULT '', -- newline-separated directives
    ADD COLUMN truncated_parts text NOT NULL DEFAULT '', -- newline-separated part names
    ADD COLUMN content_type    text,                     -- as declared by the server
    ADD COLUMN mime_detected   text,                     -- WARC-Identified-Payload-Type
    ADD COLUMN charset         text,
    ADD COLUMN body_bytes      bigint,
    ADD COLUMN http_version    text,
    ADD COLUMN peer_ip         text,
    ADD COLUMN redirects       text NOT NULL DEFAULT '', -- URLs that redirected here, in order
    ADD COLUMN etag            text,                     -- validators for conditional recrawls
    ADD COLUMN last_modified   text,
    ADD COLUMN duplicate_of    text,                     -- url_hash of the first-stored copy
    ADD COLUMN captured_at     timestamptz;              -- fetch time of the stored capture
                                                         -- (a 304 moves fetched_at only)

-- Duplicate lookups (workers/storage/dedup.py) compare a page only with originals
-- (duplicate_of IS NULL): exact copies by text_hash, near copies by SimHash bands. The four
-- 16-bit bands of the 64-bit SimHash find every pair within Hamming distance 3 (pigeonhole)
-- and most pairs up to 6; a band bucket holds ~N/65,536 originals (~2 at 100k pages).
CREATE INDEX pages_text_hash_idx ON pages (text_hash)
    WHERE duplicate_of IS NULL AND skipped IS NULL AND word_count > 0;
CREATE INDEX pages_simhash_b0_idx ON pages (((simhash >> 48) & 65535))
    WHERE duplicate_of IS NULL AND skipped IS NULL AND word_count >= 50;
CREATE INDEX pages_simhash_b1_idx ON pages (((simhash >> 32) & 65535))
    WHERE duplicate_of IS NULL AND skipped IS NULL AND word_count >= 50;
CREATE INDEX pages_simhash_b2_idx ON pages (((simhash >> 16) & 65535))
    WHERE duplicate_of IS NULL AND skipped IS NULL AND word_count >= 50;
CREATE INDEX pages_simhash_b3_idx ON pages ((simhash & 65535))
    WHERE duplicate_of IS NULL AND skipped IS NULL AND word_count >= 50;
