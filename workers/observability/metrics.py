"""Prometheus metrics common to every stage; stage-specific ones live with their stage.

Each daemon serves ``/metrics`` on ``STREAMCRAWL_METRICS_BASE_PORT + stage offset + process index``,
with ``/healthz`` and ``/readyz`` beside it (workers/observability/health.py); the lag exporter
(not a stage) on ``base + LAG_EXPORTER_PORT_OFFSET``. Prometheus' scrape configurations
(embedded stack, docker-compose, Kubernetes) are derived from these offsets.
"""

from __future__ import annotations

import logging
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import Counter, Gauge, Histogram, make_wsgi_app

from workers.observability.health import HealthState, health_app
from workers.settings import MetricsSettings
from workers.topics import Stage

__all__ = [
    "BATCH_SECONDS",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "ISOLATED_RECORDS",
    "LAG_EXPORTER_PORT_OFFSET",
    "MESSAGES_CONSUMED",
    "OLDEST_UNCONSUMED_AGE",
    "PRODUCE_RETRIES",
    "RETRIES",
    "STAGE_PORT_OFFSET",
    "TOPIC_RETENTION",
    "metrics_port",
    "serve_metrics",
]

log = logging.getLogger(__name__)

STAGE_PORT_OFFSET: dict[Stage, int] = {
    Stage.INGESTOR: 0,
    Stage.ROUTER: 10,
    Stage.FAST_EXTRACTOR: 20,
    Stage.RICH_RENDERER: 30,
    Stage.STORAGE_WRITER: 40,
    Stage.DISCOVERY: 50,
}

LAG_EXPORTER_PORT_OFFSET = 90
"""Port offset of the Kafka lag exporter (``python -m workers.observability.lag_exporter``)."""

MESSAGES_CONSUMED = Counter(
    "streamcrawl_messages_consumed_total", "Records taken from the stage's input topic", ["stage"]
)
DEAD_LETTERS = Counter(
    "streamcrawl_dead_letters_total", "Records sent to a dead-letter topic", ["stage", "error_class"]
)
RETRIES = Counter("streamcrawl_retries_total", "Batch retries after a retryable error", ["stage"])
BATCH_SECONDS = Histogram(
    "streamcrawl_batch_seconds",
    "Time to handle one batch, downstream acknowledgements included",
    ["stage"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CONSUMER_LAG = Gauge(
    "streamcrawl_consumer_lag",
    "High watermark (from fetch responses) minus the consumer's position",
    ["stage", "topic", "partition"],
)
PRODUCE_RETRIES = Counter(
    "streamcrawl_produce_retries_total",
    "Output records sent again after the broker did not acknowledge them (the handler is not re-run)",
    ["stage"],
)
ISOLATED_RECORDS = Counter(
    "streamcrawl_isolated_records_total",
    "Records handled one at a time because a previous owner died with them in flight",
    ["stage"],
)
OLDEST_UNCONSUMED_AGE = Gauge(
    "streamcrawl_oldest_unconsumed_age_seconds",
    "Age (from its record timestamp) of the oldest record of this process's partitions not yet "
    "committed; compare with streamcrawl_topic_retention_seconds",
    ["group", "topic"],
)
TOPIC_RETENTION = Gauge(
    "streamcrawl_topic_retention_seconds",
    "retention.ms of the topic, in seconds (from the registry)",
    ["topic"],
)


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


def metrics_port(settings: MetricsSettings, stage: Stage, process_index: int | None = None) -> int:
    """The port a stage's process serves /metrics, /healthz and /readyz on."""
    index = settings.process_index if process_index is None else process_index
    return settings.base_port + STAGE_PORT_OFFSET[stage] + index


def serve_metrics(settings: MetricsSettings, stage: Stage, health: HealthState | None = None) -> int | None:
    """Start /metrics, /healthz and /readyz; returns the port, or None when disabled or the port is taken."""
    if not settings.enabled:
        return None
    port = metrics_port(settings, stage)
    try:
        server = make_server(
            settings.bind_host,
            port,
            health_app(health, make_wsgi_app()),
            _ThreadingServer,
            handler_class=_QuietHandler,
        )
    except OSError as exc:
        log.warning("metrics endpoint not started on %s:%d: %s", settings.bind_host, port, exc)
        return None
    threading.Thread(target=server.serve_forever, name="metrics-http", daemon=True).start()
    return port
