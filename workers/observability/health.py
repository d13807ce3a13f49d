"""Health of one worker process, for probes: ``/healthz``, ``/readyz`` beside ``/metrics``.

The worker's event loop writes a ``HealthState`` (its liveness verdict, and a tick every
second); the metrics HTTP server, in its own thread, answers from it — so a blocked event
loop shows up as a stale tick and an unhealthy ``/healthz``, where an in-loop handler
would simply not answer.

* ``/healthz`` — 200 while the process is alive and useful (liveness verdict healthy, the
  event loop ticking), 503 otherwise. For liveness probes (restart on failure).
* ``/readyz`` — 200 while the consumer holds partitions (or idles in a saturated group),
  503 otherwise. For readiness probes and ``streamcrawl status``.

Both answer a JSON object: ``{"stage", "healthy", "ready", "reason", "partitions",
"in_flight", "lag", "idle_s", "loop_age_s"}``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import Gauge

__all__ = [
    "ASSIGNED_PARTITIONS",
    "LAST_PROGRESS",
    "WORKER_HEALTHY",
    "WORKER_READY",
    "HealthState",
    "health_app",
]

WORKER_HEALTHY = Gauge(
    "streamcrawl_worker_healthy", "1 while the worker's liveness verdict is healthy", ["stage"]
)
WORKER_READY = Gauge(
    "streamcrawl_worker_ready",
    "1 while the worker holds partitions (or idles in a saturated group)",
    ["stage"],
)
ASSIGNED_PARTITIONS = Gauge(
    "streamcrawl_assigned_partitions", "Input partitions this worker process holds", ["stage"]
)
LAST_PROGRESS = Gauge(
    "streamcrawl_last_progress_timestamp_seconds",
    "Unix time the worker last finished a record or was seen caught up",
    ["stage"],
)

_LOOP_STALE_S = 30.0
"""/healthz fails when the event loop has not ticked for this long."""


@dataclass
class HealthState:
    """Written by the worker's loop, read by the probe thread (under a lock)."""

    stage: str
    healthy: bool = True
    ready: bool = False
    reason: str = "starting"
    partitions: int = 0
    in_flight: int = 0
    lag: int = 0
    progress_at: float = field(default_factory=time.time)
    loop_tick: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def tick(self) -> None:
        with self._lock:
            self.loop_tick = time.monotonic()

    def update(
        self,
        *,
        healthy: bool,
        ready: bool,
        reason: str,
        partitions: int,
        in_flight: int,
        lag: int,
        progress: bool,
    ) -> None:
        with self._lock:
            self.healthy, self.ready, self.reason = healthy, ready, reason
            self.partitions, self.in_flight, self.lag = partitions, in_flight, lag
            if progress:
                self.progress_at = time.time()
            progress_at = self.progress_at
        WORKER_HEALTHY.labels(self.stage).set(1 if healthy else 0)
        WORKER_READY.labels(self.stage).set(1 if ready else 0)
        ASSIGNED_PARTITIONS.labels(self.stage).set(partitions)
        LAST_PROGRESS.labels(self.stage).set(progress_at)

    def loop_age_s(self) -> float:
        with self._lock:
            return time.monotonic() - self.loop_tick

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            loop_age = time.monotonic() - self.loop_tick
            out: dict[str, Any] = {
                "stage": self.stage,
                "healthy": self.healthy and loop_age < _LOOP_STALE_S,
                "ready": self.ready,
                "reason": self.reason,
                "partitions": self.partitions,
                "in_flight": self.in_flight,
                "lag": self.lag,
                "idle_s": round(time.time() - self.progress_at, 1),
                "loop_age_s": round(loop_age, 1),
            }
        if loop_age >= _LOOP_STALE_S:
            out["reason"] = f"event loop blocked for {loop_age:.0f} s"
        return out


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def health_app(state: HealthState | None, metrics: WsgiApp) -> WsgiApp:
    """``/healthz`` and ``/readyz`` from ``state``; every other path is the metrics app."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path not in ("/healthz", "/readyz"):
            return metrics(environ, start_response)
        if state is None:
            body = {"healthy": True, "ready": True, "reason": "no consumer in this process"}
        else:
            body = state.snapshot()
        ok = bool(body["healthy"] if path == "/healthz" else body["ready"])
        data = json.dumps(body).encode()
        start_response(
            "200 OK" if ok else "503 Service Unavailable",
            [("Content-Type", "application/json"), ("Content-Length", str(len(data)))],
        )
        return [data]

    return app
