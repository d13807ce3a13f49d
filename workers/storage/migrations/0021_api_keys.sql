-- API keys of the read API (workers/api/keys.py). A key is `sck_<key_id>_<secret>`; only the
-- SHA-256 of the whole key is stored (a key is 256 random bits, so a fast hash is enough: there
-- is nothing to brute-force, unlike a password). `key_id` is public: it names the key in logs,
-- in `streamcrawl api-key list` and in metrics, and finds the row without scanning.
CREATE TABLE IF NOT EXISTS api_keys (
    key_id       text COLLATE "C" PRIMARY KEY,
    name         text NOT NULL,
    scope        text NOT NULL CHECK (scope IN ('read', 'write')),   -- write includes read
    key_sha256   text NOT NULL,
    rate_per_s   integer CHECK (rate_per_s IS NULL OR rate_per_s > 0), -- NULL: STREAMCRAWL_API_RATE_LIMIT_PER_S
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS api_keys_active_name_idx ON api_keys (name) WHERE revoked_at IS NULL;
