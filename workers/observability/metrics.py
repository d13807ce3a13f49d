"""Prometheus metrics common to every stage; stage-specific ones live with their stage.

Each daemon serves ``/metrics`` on ``STREAMCRAWL_METRICS_BASE_PORT + stage offset + process index``;
the lag exporter (not a stage) on ``base + LAG_EXPORTER_PORT_OFFSET``. Prometheus' scrape
configurations (embedded stack, docker-compose, Kubernetes) are derived from these offsets.
"""

from __future__ import annotations

import logging

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from workers.settings import MetricsSettings
from workers.topics import Stage

__all__ = [
    "BATCH_SECONDS",
    "CONSUMER_LAG",
    "DEAD_LETTERS",
    "LAG_EXPORTER_PORT_OFFSET",
    "MESSAGES_CONSUMED",
    "RETRIES",
    "STAGE_PORT_OFFSET",
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


def serve_metrics(settings: MetricsSettings, stage: Stage) -> int | None:
    """Start the /metrics endpoint; returns the port, or None when disabled or the port is taken."""
    if not settings.enabled:
        return None
    port = settings.base_port + STAGE_PORT_OFFSET[stage] + settings.process_index
    try:
        start_http_server(port, addr=settings.bind_host)
    except OSError as exc:
        log.warning("metrics endpoint not started on %s:%d: %s", settings.bind_host, port, exc)
        return None
    return port
