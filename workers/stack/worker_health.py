"""What each worker process says about itself on ``/readyz`` (workers/observability/health.py).

supervisord knows whether a worker process runs; only the worker knows whether it is
useful (holds partitions, makes progress). ``streamcrawl status`` asks each running
program on its metrics port: ``STREAMCRAWL_METRICS_BASE_PORT`` + stage offset + process number.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from workers.observability.metrics import metrics_port
from workers.settings import MetricsSettings
from workers.stack.ports import LOCALHOST
from workers.stack.supervisor import ProgramState
from workers.topics import Stage

__all__ = ["describe", "worker_health"]


def _index(program: ProgramState) -> int:
    _, _, number = program.name.rpartition("_")
    return int(number) if number.isdigit() else 0


def _probe(port: int, timeout_s: float) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://{LOCALHOST}:{port}/readyz", timeout=timeout_s) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503: not ready, the body says why
        try:
            body = json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
    return body if isinstance(body, dict) else None


def worker_health(
    metrics: MetricsSettings, programs: list[ProgramState], *, timeout_s: float = 2.0
) -> dict[str, dict[str, Any] | None]:
    """``/readyz`` of every RUNNING program by name; None where it did not answer."""
    targets: dict[str, int] = {}
    for program in programs:
        if program.state != "RUNNING" or not metrics.enabled:
            continue
        try:
            stage = Stage(program.group)
        except ValueError:
            continue
        targets[program.name] = metrics_port(metrics, stage, _index(program))
    if not targets:
        return {}
    with ThreadPoolExecutor(max_workers=min(8, len(targets))) as pool:
        answers = pool.map(lambda port: _probe(port, timeout_s), targets.values())
        return dict(zip(targets, answers, strict=True))


def describe(health: dict[str, Any] | None) -> str:
    """One phrase for `status`: "4 partitions, lag 12" or "NOT READY: no partitions for 312 s"."""
    if health is None:
        return "no health answer"
    if not health.get("healthy", True):
        return f"UNHEALTHY: {health.get('reason') or 'unknown'}"
    if not health.get("ready", True):
        return f"NOT READY: {health.get('reason') or 'joining'}"
    parts = int(health.get("partitions", 0))
    return f"{parts} partition{'s' if parts != 1 else ''}, lag {health.get('lag', 0)}"
