"""Every daemon's metrics exist under the design's names and are served on /metrics."""

from __future__ import annotations

import socket
import urllib.request

from prometheus_client import REGISTRY

import workers.fast_extractor.daemon
import workers.ingestor.daemon
import workers.router.daemon
import workers.storage_writer.daemon  # noqa: F401 - registers the stage's metrics
from workers.observability.metrics import STAGE_PORT_OFFSET, serve_metrics
from workers.settings import MetricsSettings
from workers.topics import Stage

DESIGN_NAMES = {
    "ingestor_requests",  # counters are registered without their _total suffix
    "router_messages_routed",
    "processor_pages_processed",
    "storage_records_saved",
    "ingestor_fetch_seconds",
    "processor_page_seconds",
    "streamcrawl_dead_letters",
    "streamcrawl_consumer_lag",
    "streamcrawl_batch_seconds",
}


def test_design_metric_names_are_registered() -> None:
    names = {metric.name for metric in REGISTRY.collect()}
    assert names >= DESIGN_NAMES, DESIGN_NAMES - names


def test_metrics_endpoint_serves_on_the_stage_port() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = sock.getsockname()[1]
    settings = MetricsSettings(base_port=base - STAGE_PORT_OFFSET[Stage.ROUTER], process_index=0)
    port = serve_metrics(settings, Stage.ROUTER)
    assert port == base
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert "router_messages_routed_total" in body
