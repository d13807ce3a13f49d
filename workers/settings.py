"""Typed settings, parsed once.

Every knob is one documented field; the environment variable is ``STREAMCRAWL_`` + the
group prefix + the field name in upper case (for example ``STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS``).
Defaults point at the embedded stack started by ``streamcrawl up``; the credentials below
are the embedded stack's and nothing else. Production sets them from its environment
(see docker-compose.yml).

``Settings.load()`` is called once in each entry point (``__main__``/CLI) and the parsed
object is passed down through constructors. ``python -m workers.settings`` prints the
configuration table that README.md carries.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = [
    "ApiSettings",
    "DagsterSettings",
    "DiscoverySettings",
    "ExtractorSettings",
    "IngestorSettings",
    "KafkaSettings",
    "MetricsSettings",
    "PostgresSettings",
    "RendererSettings",
    "RouterSettings",
    "S3Settings",
    "Settings",
    "StackSettings",
    "StorageSettings",
    "WorkerSettings",
]


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(
        env_prefix=f"STREAMCRAWL_{prefix}",
        extra="ignore",
        use_attribute_docstrings=True,
        frozen=True,
    )


class StackSettings(BaseSettings):
    """The embedded stack: where state lives and which extra local ports it binds.

    The broker, PostgreSQL and S3 listen on the ports of the client settings
    (STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS, STREAMCRAWL_PG_PORT, STREAMCRAWL_S3_ENDPOINT),
    so one setting moves both the server and its clients.
    """

    model_config = _config("")

    data_dir: Path = Path(".streamcrawl")
    """Directory holding all embedded-stack state: databases, objects, logs, configs, PIDs."""
    broker_storage: Literal["s3", "memory"] = "s3"
    """Embedded broker storage: `s3` keeps topics and offsets in the embedded S3 across restarts; `memory` loses them."""
    seaweed_master_port: int = 19333
    """SeaweedFS master port (its gRPC port is this + 10000)."""
    seaweed_volume_port: int = 18080
    """SeaweedFS volume server port (its gRPC port is this + 10000)."""
    seaweed_filer_port: int = 18888
    """SeaweedFS filer port (its gRPC port is this + 10000)."""
    dagster_port: int = 13000
    """Port of the Dagster webserver (UI and GraphQL) on 127.0.0.1."""
    demo_port: int = 18800
    """Port of the offline demo web (`streamcrawl demo`) on 127.0.0.1."""
    supervisor_port: int = 19001
    """Port of supervisord's XML-RPC interface on 127.0.0.1 (used by supervisorctl)."""
    start_dagster: bool = True
    """Start the Dagster webserver and daemon with `streamcrawl up`."""
    start_workers: bool = True
    """Start supervisord and the worker daemons with `streamcrawl up`."""
    start_rich_renderer: bool = True
    """Run the rich renderer (Chromium) under supervisord; off to run without a browser."""
    start_prometheus: bool = True
    """Start Prometheus (Debian's `prometheus` package) with `streamcrawl up`, scraping every daemon and the lag exporter."""
    prometheus_port: int = 19090
    """Port of the embedded Prometheus (UI and HTTP API) on 127.0.0.1."""
    prometheus_scrape_interval_s: float = 15.0
    """How often the embedded Prometheus scrapes every target and evaluates the alert rules."""


class KafkaSettings(BaseSettings):
    """Kafka connection and client tuning, shared by every stage and the control plane."""

    model_config = _config("KAFKA_")

    bootstrap_servers: str = "127.0.0.1:19092"
    """Comma-separated Kafka bootstrap servers."""
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    """Kafka security protocol."""
    sasl_mechanism: str | None = None
    """SASL mechanism (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) when SASL is used."""
    sasl_username: str | None = None
    """SASL username when SASL is used."""
    sasl_password: str | None = None
    """SASL password when SASL is used."""
    linger_ms: int = 20
    """Producer linger: how long to wait to fill a batch (throughput vs latency)."""
    # aiokafka compresses lz4 at level 9 (LZ4-HC): 0.39 ms per raw page for a 0.8 % gain and
    # 0.73 ms per processed page; its zstd (level 3) costs 0.02 / 0.15 ms and packs processed
    # pages smaller (0.65 vs 0.72 of their size). Measured on the readability pages.
    compression: Literal["zstd", "lz4", "gzip", "none"] = "zstd"
    """Producer batch compression (zstd: cheapest per page here, and Kafka >= 2.1 reads it; page bodies are already zstd inside)."""
    max_batch_bytes: int = 1_048_576
    """Producer batch size in bytes per partition."""
    session_timeout_ms: int = 10_000
    """Consumer group session timeout."""
    heartbeat_interval_ms: int = 1_000
    """Consumer group heartbeat interval."""
    commit_interval_s: float = 1.0
    """How often workers commit the offsets of fully handled records."""
    fetch_min_bytes: int = 1
    """Consumer fetch: the broker answers once this many bytes are ready (or the wait is over)."""
    fetch_max_wait_ms: int = 500
    """Consumer fetch: the longest the broker holds a fetch waiting for fetch_min_bytes."""
    request_timeout_ms: int = 30_000
    """Client request timeout: a produce not acknowledged within it fails and is sent again by the worker."""


class PostgresSettings(BaseSettings):
    """PostgreSQL holding page metadata (and Dagster's storage in the embedded stack)."""

    model_config = _config("PG_")

    host: str = "127.0.0.1"
    """PostgreSQL host."""
    port: int = 15432
    """PostgreSQL port."""
    user: str = "streamcrawl"
    """PostgreSQL user."""
    password: str = "streamcrawl"
    """PostgreSQL password (the embedded stack's default; set it in production)."""
    database: str = "streamcrawl"
    """Database holding the `pages` table."""
    dagster_database: str = "dagster"
    """Database holding Dagster's run, event-log and schedule storage."""
    pool_size: int = 8
    """Connections per storage-writer process."""
    # A client that vanished mid-transaction (a worker host cut off the network) otherwise
    # holds its row locks until TCP gives up, up to hours later, and every other writer of those
    # rows waits behind it. Our transactions hold no other I/O: a healthy client is never idle in
    # one. The idle timeout only runs while the session waits for a new statement, though: a
    # backend blocked sending a result to the vanished client, or waiting for the rest of an
    # extended-protocol exchange (Parse/Bind without Sync), is covered by the TCP settings.
    idle_in_transaction_timeout_s: float = 30.0
    """PostgreSQL ends a session of ours idle inside a transaction this long (idle_in_transaction_session_timeout; 0 = never), releasing the locks of a client that vanished."""
    lost_client_timeout_s: float = 30.0
    """PostgreSQL drops a connection of ours whose client stopped answering at the TCP level after about this long (tcp_user_timeout, and keepalive probes from a third of it; 0 = the server's defaults, hours), so a backend blocked on a vanished host releases its locks."""

    def server_options(self) -> list[str]:
        """Session settings sent at connection start (libpq ``options``)."""
        opts = []
        if self.idle_in_transaction_timeout_s > 0:
            opts.append(
                f"idle_in_transaction_session_timeout={round(self.idle_in_transaction_timeout_s * 1000)}"
            )
        lost = self.lost_client_timeout_s
        if lost > 0:
            # Keepalives cover a backend waiting to read (nothing unacknowledged, so no TCP
            # retransmission timer runs); tcp_user_timeout covers one blocked sending, and caps
            # the keepalive abort at the same bound (Linux: the abort comes once that long has
            # passed without an answer, after the first unanswered probe).
            opts += [
                f"tcp_user_timeout={round(lost * 1000)}",
                f"tcp_keepalives_idle={max(1, round(lost / 3))}",
                f"tcp_keepalives_interval={max(1, round(lost / 6))}",
                "tcp_keepalives_count=4",
            ]
        return opts

    def dsn(self, database: str | None = None) -> str:
        """A libpq URI (asyncpg and psycopg read it alike); session settings go in ``options``."""
        url = f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{database or self.database}"
        opts = self.server_options()
        if opts:
            url += "?options=" + quote(" ".join(f"-c {o}" for o in opts), safe="")
        return url


class S3Settings(BaseSettings):
    """S3-compatible object store holding page content (SeaweedFS embedded, MinIO in production)."""

    model_config = _config("S3_")

    endpoint: str = "127.0.0.1:18333"
    """S3 endpoint as host:port."""
    access_key: str = "streamcrawl"
    """S3 access key (the embedded stack's default; set it in production)."""
    secret_key: str = "streamcrawl-secret"
    """S3 secret key (the embedded stack's default; set it in production)."""
    bucket: str = "streamcrawl"
    """Bucket holding page content."""
    broker_bucket: str = "streamcrawl-broker"
    """Bucket the embedded broker keeps its log in (embedded stack only)."""
    secure: bool = False
    """Use HTTPS to reach the object store."""
    region: str = "us-east-1"
    """S3 region."""


class MetricsSettings(BaseSettings):
    """Prometheus metrics and logging."""

    model_config = _config("METRICS_")

    base_port: int = 19100
    """Each worker process serves /metrics on base_port + its offset (ingestor 0, router 10, fast 20, rich 30, storage 40, discovery 50, lag exporter 90) + process number."""
    enabled: bool = True
    """Serve Prometheus metrics from every worker."""
    process_index: int = 0
    """Index of this process among its program's processes (supervisord sets it from %(process_num)d)."""
    bind_host: str = "127.0.0.1"
    """Address the metrics endpoints bind to (0.0.0.0 inside a container for Prometheus to scrape)."""
    log_level: str = "INFO"
    """Log level of the worker daemons (JSON logs on stderr)."""
    lag_exporter_interval_s: float = 15.0
    """How often the lag exporter reads high watermarks and committed offsets of every consumer group."""


class WorkerSettings(BaseSettings):
    """Behaviour shared by every worker's lifecycle."""

    model_config = _config("WORKER_")

    max_attempts: int = 3
    """Attempts for a message that fails with a retryable error before it is dead-lettered."""
    retry_base_delay_s: float = 0.5
    """First retry delay; doubles each attempt, with full jitter."""
    retry_max_delay_s: float = 30.0
    """Cap of a single retry delay."""
    drain_timeout_s: float = 8.0
    """On SIGTERM, how long in-flight work may take before the worker gives up (keep under supervisord's stopwaitsecs)."""
    max_page_bytes: int = 5 * 1024 * 1024
    """Raw HTML size cap. Larger bodies are truncated to this size and flagged `truncated` (see ARCHITECTURE.md)."""
    max_crashes: int = 3
    """Deaths of a worker process blamed on one record (handled alone after the first) before that record is dead-lettered as WorkerCrashed."""
    revoke_wait_s: float = 10.0
    """On partition revocation, how long the revoked partitions' in-flight records may take to finish before their offsets are committed (keep under the rebalance timeout)."""
    no_partitions_exit_s: float = 300.0
    """A worker that holds no partitions for this long (and its group is not simply saturated) exits non-zero, to be restarted."""
    stall_exit_s: float = 300.0
    """A worker that finishes no record for this long while records wait or are in flight (or hears no fetch response) exits non-zero."""
    loop_block_exit_s: float = 120.0
    """A worker whose event loop is blocked this long (one record hogging the CPU) is killed by its watchdog thread; the record is then blamed like a crash."""


class IngestorSettings(BaseSettings):
    """The fetcher: politeness, limits and failure handling."""

    model_config = _config("INGESTOR_")

    concurrency: int = 500
    """Most requests in flight per ingestor process; fewer while the event loop lags (see max_loop_lag_s)."""
    max_loop_lag_s: float = 0.1
    """Event-loop lag above which the ingestor lowers its requests in flight (and raises them again below half of it); 0 keeps `concurrency` fixed."""
    per_host_concurrency: int = 2
    """Requests in flight to one host at a time."""
    per_host_delay_s: float = 0.25
    """Minimum delay between two request starts to the same host."""
    per_ip_concurrency: int = 8
    """Requests in flight to one IP address at a time, whatever host names point to it."""
    per_ip_delay_s: float = 0.0
    """Minimum delay between two request starts to one IP address; a robots.txt Crawl-delay applies per address as well as per host (hosts with one take turns on the address; hosts without one are not held back by them). 0 by default: one address often serves many unrelated sites (shared hosting, CDNs)."""
    crawl_delay_cap_s: float = 10.0
    """robots.txt Crawl-delay is honoured up to this many seconds."""
    robots_ttl_s: float = 3600.0
    """How long a host's robots.txt stays cached."""
    user_agent: str = "StreamCrawl/0.1"
    """Product token sent in User-Agent (and matched against robots.txt)."""
    contact_url: str = "https://github.com/streamcrawl/streamcrawl"
    """Contact URL appended to the User-Agent so site owners can reach the operator."""
    connect_timeout_s: float = 5.0
    """TCP/TLS connect timeout."""
    read_timeout_s: float = 10.0
    """Timeout between two reads of the response."""
    total_timeout_s: float = 30.0
    """Whole-request deadline, redirects and body included."""
    max_redirects: int = 5
    """Redirects followed before giving up."""
    max_retries: int = 0
    """Immediate in-process retries of a transient failure; by default none: the request is re-queued with a delay instead (max_requeues)."""
    retry_after_cap_s: float = 30.0
    """Longest Retry-After waited in-process (only with max_retries > 0); longer ones re-queue the request."""
    max_requeues: int = 5
    """Times a request is put back on crawl.request after its own transient failure or an unreachable robots.txt before it is dead-lettered; a paused host's requests wait without spending it, until the host's breaker has tripped more than this many times in a row."""
    requeue_base_delay_s: float = 5.0
    """Delay before the first re-queued try; doubles with each requeue (with jitter), at least the server's Retry-After."""
    requeue_max_delay_s: float = 600.0
    """Cap of one requeue delay."""
    max_waiting: int = 10000
    """Requests held in memory waiting for their not_before time; beyond that the ingestor reads no more until the earliest is due."""
    breaker_failures: int = 5
    """Consecutive failures of a host that open its circuit breaker."""
    breaker_pause_s: float = 60.0
    """How long an open breaker first pauses a host; its requests wait (re-queued with not_before), they are not dead-lettered."""
    breaker_max_pause_s: float = 1800.0
    """Each trip without a success in between doubles the pause, up to this."""
    dns_timeout_s: float = 5.0
    """Deadline of one DNS lookup (c-ares), outside the request's timeouts."""
    dns_servers: list[str] = Field(default_factory=list)
    """JSON list of DNS servers ("ip" or "ip:port") instead of /etc/resolv.conf."""
    sitemap_max_bytes: int = 50 * 1024 * 1024
    """Most response bytes read of one sitemap (kind=sitemap requests; gzip bodies counted compressed)."""
    allow_private_networks: bool = False
    """Allow fetching private, loopback and link-local addresses (SSRF guard off). Tests and the demo turn it on."""
    allowed_networks: list[str] = Field(default_factory=list)
    """JSON list of CIDRs fetched even though the SSRF guard refuses private networks, e.g. ["127.0.0.1/32"]; every other private, loopback and link-local address stays refused."""
    resolve_overrides: dict[str, str] = Field(default_factory=dict)
    """Static DNS: JSON map of host or `*.suffix` to IP, e.g. {"*.demo.test": "127.0.0.1"}."""
    http2: bool = True
    """Negotiate HTTP/2 with servers that offer it over TLS."""
    ca_bundle: Path | None = None
    """PEM file of CA certificates to trust for HTTPS instead of the default (certifi) bundle."""
    retry_base_delay_s: float = 0.5
    """First in-process retry delay of a transient failure; doubles per retry, with full jitter."""
    retry_max_delay_s: float = 10.0
    """Cap of one in-process retry delay (a Retry-After is capped by retry_after_cap_s instead)."""

    @property
    def user_agent_header(self) -> str:
        """The User-Agent sent on every request (the ingestor's and the rich renderer's browser)."""
        return f"{self.user_agent} (+{self.contact_url})"

    @property
    def robots_token(self) -> str:
        """The product token matched against robots.txt groups (User-Agent up to its first ``/``)."""
        return self.user_agent.split("/", 1)[0].strip() or self.user_agent


class RouterSettings(BaseSettings):
    """Static-vs-dynamic scoring. Weights are added to a base score of 100."""

    model_config = _config("ROUTER_")

    threshold: int = 80
    """Pages scoring at or above this go to the fast path, below it to the rich renderer."""
    weights: dict[str, int] = Field(default_factory=dict)
    """JSON map overriding rule weights by rule name (see workers/router/rules.py for the names)."""


class ExtractorSettings(BaseSettings):
    """Extraction (the fast extractor; its bounds and caps apply to the rich path's extraction too)."""

    model_config = _config("EXTRACTOR_")

    processes: int = 1
    """Extraction processes per fast-extractor daemon (pages are extracted off the daemon's event loop)."""
    page_deadline_s: float = 10.0
    """CPU seconds one page's extraction may cost its process; past it the process is replaced and the page dead-lettered (ExtractionError). CPU, not wall-clock, time: a large page on a loaded machine waits for a core longer than it computes."""
    page_wall_deadline_s: float = 60.0
    """Wall-clock seconds one page's extraction may take however little CPU it got (a machine so loaded that a page waits this long is dead-lettered the same way)."""
    max_outlinks: int = 10_000
    """Outlinks kept per page (first ones in document order); `outlinks_total` keeps the real count."""
    max_nodes: int = 200_000
    """Pages with more tags than this skip main-content scoring (a linear fallback extracts them) and are flagged `node_cap`."""
    max_depth: int = 2_000
    """Pages whose block elements nest deeper than this are parsed without them (the HTML tree builder is quadratic in that depth) and flagged `deep_nesting`."""
    max_text_bytes: int = 1_048_576
    """Plain main text cap (UTF-8 bytes); longer text is cut and `text` is listed in `truncated_parts`."""
    max_markdown_bytes: int = 2_097_152
    """Markdown cap (UTF-8 bytes); longer Markdown is cut and `markdown` is listed in `truncated_parts`."""


class StorageSettings(BaseSettings):
    """The storage writer."""

    model_config = _config("STORAGE_")

    batch_size: int = 200
    """Records written per PostgreSQL batch."""
    s3_parallelism: int = 32
    """Concurrent S3 PUTs per storage-writer process."""
    write_concurrency: int = 2
    """Sub-batches of one batch written concurrently (their PUTs overlap each other's UPSERTs)."""
    warc_object_bytes: int = 4_000_000
    """Largest WARC object (bytes) the writer rolls a batch's gzipped records into; each page's records are byte ranges inside one object (see workers/storage/warc.py). Below 5 MiB keeps a PUT single-part."""
    gc_grace_s: float = 3600.0
    """Unreferenced content objects younger than this are never deleted (a writer may have just PUT one); writers re-PUT rather than reference an object older than half of it."""
    gc_interval_s: float = 3600.0
    """How often a storage writer deletes content objects no page row references (0 = never; `streamcrawl fsck --repair` does it on demand)."""
    near_duplicate_distance: int = 6
    """Largest SimHash Hamming distance (of 64 bits) at which a page is flagged as a near duplicate of an earlier one (`duplicate_of`)."""
    search_index_batch: int = 500
    """Pages whose search vector (`page_search`) the writer's background indexer builds per statement (workers/storage/search_index.py)."""
    search_index_max_delay_s: float = 5.0
    """Longest the background search indexer waits for the writer to be idle before indexing its next batch anyway (bounds search lag under sustained load)."""


class DiscoverySettings(BaseSettings):
    """The discovery stage: following links within a batch's scope, reading sitemaps."""

    model_config = _config("DISCOVERY_")

    extra_suffixes: list[str] = Field(default_factory=list)
    """JSON list of domain suffixes treated as public beside the bundled Public Suffix List, e.g. ["corp.internal"] (the demo web uses ["demo.test"])."""
    batch_size: int = 200
    """Records (stored pages, dead letters, sitemaps) read per batch; a batch is recorded in one or more ledger transactions."""
    links_per_transaction: int = 5_000
    """A ledger transaction ends after the page whose links take it to this many candidates: it bounds the daemon's memory whatever the pages' link counts."""
    max_sitemap_bytes: int = 50 * 1024 * 1024
    """Largest sitemap file read, after gzip decompression (the protocol's limit is 50 MB)."""
    max_sitemap_urls: int = 50_000
    """URLs read from one sitemap file (the protocol's limit is 50,000)."""
    max_sitemaps_per_host: int = 1_000
    """robots.txt and sitemap files read per host and batch (sitemap indexes can nest and repeat)."""


class RendererSettings(BaseSettings):
    """The rich renderer (Crawl4AI + Chromium)."""

    model_config = _config("RENDERER_")

    chromium_path: Path = Path("/usr/bin/chromium")
    """Chromium executable used by Crawl4AI."""
    browser_start_timeout_s: float = 90.0
    """Longest Chromium may take to open its DevTools port (a cold start on a loaded 2-core machine took over 30 s)."""
    concurrency: int = 4
    """Pages rendered at once per renderer process."""
    page_timeout_s: float = 20.0
    """Deadline for one page render."""
    settle_timeout_s: float = 3.0
    """Cap on waiting for network idle / stable content after load."""
    recycle_after_pages: int = 200
    """Restart the browser after this many pages."""
    max_browser_rss_mb: int = 1200
    """Restart the browser when Chromium's total RSS exceeds this."""
    max_requests_per_page: int = 300
    """Requests one rendered page may make besides its document (scripts, XHR/fetch, iframes, ...); later ones are refused."""
    max_resource_bytes_per_page: int = 32 * 1024 * 1024
    """Response bytes one rendered page may load besides its document; a response that would pass the cap is refused."""
    blocked_resource_types: list[str] = Field(
        default_factory=lambda: [
            "image",
            "media",
            "font",
            "texttrack",
            "eventsource",
            "manifest",
            "ping",
            "cspviolationreport",
        ]
    )
    """JSON list of browser resource types never fetched (Playwright's names: image, media, font, stylesheet, script, xhr, fetch, ...)."""
    per_host_concurrency: int = 6
    """Sub-resource requests in flight to one host at a time, per renderer process (6: what one browser opens)."""
    per_host_delay_s: float = 0.0
    """Minimum delay between two sub-resource request starts to one host (robots.txt Crawl-delay raises it)."""
    request_wait_cap_s: float = 5.0
    """Longest a sub-resource request waits for its host's politeness turn before it is refused."""
    cache_mb: int = 64
    """Memory for the shared cache of sub-resources (scripts, styles) that a site's pages reuse; 0 turns it off."""
    cache_ttl_s: float = 600.0
    """Longest a cached sub-resource is reused (less when its Cache-Control max-age says so)."""
    max_rendered_bytes: int = 5 * 1024 * 1024
    """Rendered HTML size cap (UTF-8 bytes); larger DOMs are truncated and flagged (truncated_parts: rendered)."""


class ApiSettings(BaseSettings):
    """The read API (`workers.api`): search, pages, batches, crawl submission."""

    model_config = _config("API_")

    enabled: bool = True
    """Run the API under supervisord with `streamcrawl up` (it also needs STREAMCRAWL_START_WORKERS)."""
    bind_host: str = "127.0.0.1"
    """Address the API listens on (0.0.0.0 only inside a container, behind a proxy or a Service)."""
    port: int = 18400
    """Port of the API."""
    pool_size: int = 8
    """PostgreSQL connections of the API process (its one pool, shared by every route)."""
    query_timeout_s: float = 5.0
    """Longest a PostgreSQL query of a request may run; it is cancelled after that and the request answers 503."""
    default_page_size: int = 20
    """Items per page of a list route when `limit` is not given."""
    max_page_size: int = 100
    """Largest `limit` a list route accepts."""
    max_query_chars: int = 256
    """Longest search query `q` accepted."""
    rank_window: int = 1_000
    """Relevance order ranks the N most recently fetched pages that match `q` (ranking every match of a common word costs seconds at 100k pages)."""
    max_crawl_urls: int = 100_000
    """Most URLs one `POST /crawls` may list (`urls` and the valid lines of `list` together)."""
    rate_limit_per_s: int = 50
    """Requests per second one API key may make (per API process), unless the key sets its own."""
    dead_letter_scan: int = 2_000
    """Dead-letter records one `GET /dead-letters` page reads from Kafka at most (follow `next_cursor` for more)."""


class DagsterSettings(BaseSettings):
    """The Dagster control plane."""

    model_config = _config("DAGSTER_")

    frontier_max_rank: int = 1_000_000
    """Largest rank the frontier is partitioned up to."""
    frontier_partition_size: int = 1_000
    """Ranks per frontier partition."""
    lag_alert_threshold: int = 10_000
    """Consumer lag above which a group counts as lagging."""
    lag_alert_ticks: int = 3
    """Consecutive lagging sensor ticks before an alert is raised."""
    dlq_max_attempts: int = 3
    """Dead letters that already failed this many times are parked, not replayed."""
    dlq_replay_backoff_s: float = 60.0
    """A dead letter is replayed no sooner than this after its last failure, doubled per attempt (capped at 6 h)."""
    dlq_rate_threshold: float = 0.1
    """Largest share of a stored frontier partition's URLs that may be dead-lettered before its check fails."""
    stale_after_s: float = 300.0
    """A stage asset whose offsets have not advanced for this long while work is pending upstream is stale."""
    retention_alert_ratio: float = 0.5
    """The retention check fails when a group's oldest unconsumed record is older than this share of its topic's retention.ms."""
    recrawl_after_days: float = 30.0
    """The frontier_recrawl schedule (off by default) re-crawls partitions whose latest batch completed longer ago than this."""
    recrawl_cron: str = "0 3 * * *"
    """When the frontier_recrawl schedule runs (cron, UTC)."""
    recrawl_max_partitions: int = 10
    """Partitions the frontier_recrawl schedule launches per tick (each is one run)."""


class Settings(BaseModel):
    """All settings, one group per concern."""

    model_config = {"frozen": True}

    stack: StackSettings = Field(default_factory=StackSettings)
    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    postgres: PostgresSettings = Field(default_factory=PostgresSettings)
    s3: S3Settings = Field(default_factory=S3Settings)
    metrics: MetricsSettings = Field(default_factory=MetricsSettings)
    worker: WorkerSettings = Field(default_factory=WorkerSettings)
    ingestor: IngestorSettings = Field(default_factory=IngestorSettings)
    router: RouterSettings = Field(default_factory=RouterSettings)
    extractor: ExtractorSettings = Field(default_factory=ExtractorSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    renderer: RendererSettings = Field(default_factory=RendererSettings)
    discovery: DiscoverySettings = Field(default_factory=DiscoverySettings)
    dagster: DagsterSettings = Field(default_factory=DagsterSettings)
    api: ApiSettings = Field(default_factory=ApiSettings)

    @classmethod
    def load(cls) -> Settings:
        """Parse every group from the environment. Call once per process."""
        return cls()


def env_names() -> dict[str, tuple[str, str]]:
    """Every environment variable StreamCrawl reads: name -> (default, description)."""
    out: dict[str, tuple[str, str]] = {}
    for group_field in Settings.model_fields.values():
        group = group_field.default_factory
        assert isinstance(group, type) and issubclass(group, BaseSettings)
        prefix = str(group.model_config.get("env_prefix", ""))
        for name, info in group.model_fields.items():
            default = info.default if info.default_factory is None else info.default_factory()  # type: ignore[call-arg]
            out[f"{prefix}{name}".upper()] = (str(default), info.description or "")
    return out


def markdown_table() -> str:
    rows = ["| Variable | Default | Meaning |", "|---|---|---|"]
    for name, (default, doc) in env_names().items():
        rows.append(f"| `{name}` | `{default}` | {doc.replace('|', '/')} |")
    return "\n".join(rows)


README_BEGIN = "<!-- settings-table:begin (python -m workers.settings --readme README.md) -->"
README_END = "<!-- settings-table:end -->"


def update_readme(path: Path) -> bool:
    """Rewrite the table between the README markers; True when the file changed."""
    text = path.read_text()
    head, _, rest = text.partition(README_BEGIN)
    _, _, tail = rest.partition(README_END)
    new = f"{head}{README_BEGIN}\n{markdown_table()}\n{README_END}{tail}"
    if new != text:
        path.write_text(new)
    return new != text


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--readme":
        update_readme(Path(sys.argv[2]))
    else:
        sys.stdout.write(markdown_table() + "\n")
