-- The crawl ledger: every batch, every URL it ever requested (the URL-seen store) and its
-- outcome, with per-batch counters so that progress is one row read, whatever the batch size.
-- Written by the publishers (listed URLs) and by the discovery daemon (discovered URLs and every
-- outcome); read by the CLI, Dagster and the API through workers/ledger.

-- Batches. Older control-plane versions created this table with rank-range columns NOT NULL;
-- they are optional now (a CLI or API batch has no rank range).
CREATE TABLE IF NOT EXISTS crawl_batches (
    batch         text PRIMARY KEY,
    list_id       text,
    first_rank    integer,
    last_rank     integer,
    url_template  text,
    recrawl       boolean NOT NULL DEFAULT false,
    requested     integer NOT NULL DEFAULT 0,
    skipped       integer NOT NULL DEFAULT 0,
    status        text NOT NULL DEFAULT 'publishing',
    run_id        text,
    published_at  timestamptz,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE crawl_batches ALTER COLUMN list_id DROP NOT NULL;
ALTER TABLE crawl_batches ALTER COLUMN first_rank DROP NOT NULL;
ALTER TABLE crawl_batches ALTER COLUMN last_rank DROP NOT NULL;
ALTER TABLE crawl_batches ALTER COLUMN url_template DROP NOT NULL;
ALTER TABLE crawl_batches ALTER COLUMN recrawl SET DEFAULT false;
ALTER TABLE crawl_batches ALTER COLUMN requested SET DEFAULT 0;
ALTER TABLE crawl_batches ALTER COLUMN skipped SET DEFAULT 0;
ALTER TABLE crawl_batches
    ADD COLUMN IF NOT EXISTS origin        text NOT NULL DEFAULT 'dagster',   -- cli | dagster | api | demo
    ADD COLUMN IF NOT EXISTS partition_key text,                               -- frontier partition, if any
    ADD COLUMN IF NOT EXISTS scope         jsonb,                              -- the batch's Scope, fixed at publish
    ADD COLUMN IF NOT EXISTS sitemaps      boolean NOT NULL DEFAULT false,
    ADD COLUMN IF NOT EXISTS created_at    timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN IF NOT EXISTS completed_at  timestamptz,
    -- counters of page URLs (kind = 'page'), maintained with every state change
    ADD COLUMN IF NOT EXISTS listed        integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS discovered    integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS fetched       integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS stored        integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS unchanged     integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS dead          integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS fast          integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS rich          integer NOT NULL DEFAULT 0,
    -- robots.txt / sitemap fetches of the batch: requested and finished (not pages)
    ADD COLUMN IF NOT EXISTS aux_requested integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS aux_finished  integer NOT NULL DEFAULT 0,
    ADD COLUMN IF NOT EXISTS first_outcome_at timestamptz,
    ADD COLUMN IF NOT EXISTS last_outcome_at  timestamptz;
-- `requested` counts page URLs admitted (listed + discovered); `skipped` page URLs requested but
-- not stored on purpose (robots, noindex, non-HTML, already stored).
CREATE INDEX IF NOT EXISTS crawl_batches_partition_idx ON crawl_batches (partition_key, created_at)
    WHERE partition_key IS NOT NULL;

-- The URL-seen store: one row per (batch, URL) ever requested. `state` moves from queued to one
-- final state; `published` is set once the crawl.request record was acknowledged (a redelivered
-- parent re-publishes only children that never were).
CREATE TABLE IF NOT EXISTS crawl_urls (
    batch       text NOT NULL,
    url_hash    text COLLATE "C" NOT NULL,
    url         text NOT NULL,
    host        text NOT NULL,
    kind        text NOT NULL DEFAULT 'page',      -- page | sitemap | robots
    depth       integer NOT NULL DEFAULT 0,
    source      text NOT NULL DEFAULT 'list',      -- list | link | sitemap
    parent      text COLLATE "C",
    rank        integer,
    request_id  text NOT NULL DEFAULT '',
    state       text NOT NULL DEFAULT 'queued',    -- queued | stored | unchanged | skipped | dead
    reason      text,                              -- skip reason or the dead letter's error class
    route       text,
    fetched     boolean NOT NULL DEFAULT false,   -- the outcome came after a successful fetch
    published   boolean NOT NULL DEFAULT false,
    admitted_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (batch, url_hash)
);
CREATE INDEX IF NOT EXISTS crawl_urls_unpublished_idx ON crawl_urls (batch, parent) WHERE NOT published;
CREATE INDEX IF NOT EXISTS crawl_urls_hash_idx ON crawl_urls (url_hash);
CREATE INDEX IF NOT EXISTS crawl_urls_open_idx ON crawl_urls (batch, state) WHERE state IN ('queued', 'dead');

-- Pages admitted per host and batch: the max_pages_per_host budget, enforced under row locks.
CREATE TABLE IF NOT EXISTS crawl_host_counts (
    batch     text NOT NULL,
    host      text NOT NULL,
    admitted  integer NOT NULL DEFAULT 0,
    PRIMARY KEY (batch, host)
);

-- Counts by reason: skipped and dead page URLs (outcome skipped/dead), links found but not
-- requested (outcome dropped: out_of_scope, too_deep, nofollow, budget_host, …), failed
-- robots/sitemap fetches (outcome aux_dead). One example URL per reason for triage.
CREATE TABLE IF NOT EXISTS crawl_batch_reasons (
    batch     text NOT NULL,
    outcome   text NOT NULL,
    reason    text NOT NULL,
    n         bigint NOT NULL DEFAULT 0,
    example   text,
    PRIMARY KEY (batch, outcome, reason)
);

-- Batches recorded by earlier versions (crawl_batch_urls + crawl_dead_letters of the control
-- plane) move into the ledger, so their progress and membership stay readable.
DO $$
BEGIN
    IF to_regclass('crawl_batch_urls') IS NOT NULL THEN
        INSERT INTO crawl_urls (batch, url_hash, url, host, rank, state, reason, published, finished_at)
        SELECT u.batch, u.url_hash, u.url,
               lower(split_part(split_part(u.url, '://', 2), '/', 1)),
               u.rank,
               CASE WHEN p.url_hash IS NOT NULL THEN 'stored'
                    WHEN d.url_hash IS NOT NULL THEN 'dead' ELSE 'queued' END,
               CASE WHEN p.url_hash IS NULL THEN d.error_class END,
               true,
               CASE WHEN p.url_hash IS NOT NULL THEN p.updated_at ELSE d.failed_at END
        FROM crawl_batch_urls u
        JOIN crawl_batches b ON b.batch = u.batch
        LEFT JOIN pages p ON p.url_hash = u.url_hash AND p.updated_at >= b.published_at
        LEFT JOIN crawl_dead_letters d ON d.batch = u.batch AND d.url_hash = u.url_hash
        ON CONFLICT DO NOTHING;
        UPDATE crawl_batches b SET
            listed = c.n, requested = c.n, stored = c.stored, dead = c.dead,
            completed_at = CASE WHEN c.queued = 0 THEN now() END
        FROM (SELECT batch, count(*) AS n,
                     count(*) FILTER (WHERE state = 'stored') AS stored,
                     count(*) FILTER (WHERE state = 'dead') AS dead,
                     count(*) FILTER (WHERE state = 'queued') AS queued
              FROM crawl_urls GROUP BY batch) c
        WHERE c.batch = b.batch;
        UPDATE crawl_batches SET skipped = 0 WHERE listed > 0;
    END IF;
END $$;
