"""Liveness on the real broker: /readyz and /healthz answer, and a worker whose broker went
silent exits non-zero (for supervisord to restart it) instead of sitting idle."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.pipeline import Pipeline
from tests.helpers.ports import free_port
from tests.helpers.services import own_broker as own_broker_of
from workers.lifecycle.worker import EXIT_UNHEALTHY
from workers.observability.metrics import STAGE_PORT_OFFSET
from workers.settings import KafkaSettings, Settings
from workers.stack.broker import TansuBroker
from workers.topics import Stage

pytestmark = pytest.mark.integration


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[tuple[TansuBroker, KafkaSettings]]:
    with own_broker_of(tmp_path / "kafka") as found:
        yield found


def _probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as resp:
        return str(resp.read().decode())


async def _until(predicate: Any, *, timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            value = await asyncio.to_thread(predicate)
        except OSError:
            value = None
        if value:
            return value
        await asyncio.sleep(0.3)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


async def test_probes_answer_and_a_worker_whose_broker_went_silent_exits_to_be_restarted(
    own_broker: tuple[TansuBroker, KafkaSettings], tmp_path: Path
) -> None:
    broker, kafka = own_broker
    port = free_port()
    env = {
        "STREAMCRAWL_METRICS_ENABLED": "true",
        "STREAMCRAWL_METRICS_BASE_PORT": str(port - STAGE_PORT_OFFSET[Stage.FAST_EXTRACTOR]),
        "STREAMCRAWL_WORKER_STALL_EXIT_S": "6",
        "STREAMCRAWL_WORKER_NO_PARTITIONS_EXIT_S": "6",
    }
    pipeline = Pipeline(Settings(kafka=kafka), log_dir=tmp_path / "logs", extra_env=env)
    pipeline.start("fast_extractor")
    try:
        _status, ready = await _until(
            lambda: (r := _probe(port, "/readyz"))[0] == 200 and r, timeout_s=60, what="/readyz 200"
        )
        assert ready["partitions"] == 8 and ready["ready"] and ready["stage"] == "fast_extractor"
        assert (await asyncio.to_thread(_probe, port, "/healthz"))[0] == 200
        metrics = await asyncio.to_thread(_scrape, port)
        assert 'streamcrawl_worker_ready{stage="fast_extractor"} 1.0' in metrics
        assert 'streamcrawl_assigned_partitions{stage="fast_extractor"} 8.0' in metrics

        pid = broker.pid()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the broker stops answering, as Tansu did when its storage failed
        started = time.monotonic()
        try:
            code = await _until(
                lambda: pipeline.procs["fast_extractor"].poll(), timeout_s=60, what="the worker to give up"
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        took = time.monotonic() - started
    finally:
        pipeline.stop()
    logs = pipeline.logs("fast_extractor", tail=60)
    assert code == EXIT_UNHEALTHY, logs
    assert "unhealthy, exiting to be restarted: no progress for" in logs and "no fetch response" in logs, logs
    assert took < 40, took
