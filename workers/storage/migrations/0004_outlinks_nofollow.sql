-- The rel=nofollow subset of a page's outlinks, kept beside them so that a recrawl's 304
-- (no body to parse) can hand the discovery stage the stored links with their nofollow marks.
ALTER TABLE pages ADD COLUMN IF NOT EXISTS outlinks_nofollow text NOT NULL DEFAULT '';
