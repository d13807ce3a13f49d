"""`streamcrawl status [--json]`: components, worker programs, Prometheus targets, topic ends, group lag, DLQ depths."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from workers.cli.base import Subparsers
from workers.settings import Settings
from workers.stack.api_probe import api_status
from workers.stack.kafka_status import KafkaStatus, kafka_status
from workers.stack.stack import Stack
from workers.stack.worker_health import describe, worker_health

__all__ = ["EXIT_DOWN", "register", "run"]

EXIT_DOWN = 3
"""Exit status when a component the configuration starts is down (like `systemctl status`)."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the stack's components, workers, topics, lag and DLQs",
        description=(
            "Each component up/down with its address and PID, each worker program's supervisord "
            "state and what the worker says about itself (partitions held, lag, or why it is not "
            "ready), orphaned workers of an earlier supervisord, per-topic log end, per-group lag "
            f"and DLQ depths. Exits {EXIT_DOWN} when an enabled component is down."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def collect(settings: Settings) -> dict[str, Any]:
    stack = Stack(settings)
    components = stack.status()
    programs = stack.supervisor.programs() if stack.supervisor.pid() is not None else []
    health = worker_health(settings.metrics, programs)
    orphans = stack.supervisor.orphans()
    broker = next((c for c in components if c.name == stack.broker.name), None)
    if broker is not None and broker.up:
        kafka = asyncio.run(kafka_status(settings.kafka))
    else:
        kafka = KafkaStatus(
            error=f"broker is down{f' ({broker.detail})' if broker and broker.detail else ''}"
        )
    enabled = {c.name for c in stack.components() if stack.enabled(c)}
    prometheus_up = any(c.name == stack.prometheus.name and c.up for c in components)
    return {
        "prometheus": stack.prometheus.targets().as_dict() if prometheus_up else None,
        "up": all(c.up for c in components if c.name in enabled),
        "data_dir": str(stack.paths.root),
        "components": [c.as_dict() for c in components],
        "programs": [{**p.as_dict(), "health": health.get(p.name)} for p in programs],
        "orphans": [{"pid": o.pid} for o in orphans],
        "api": api_status(settings.api).as_dict()
        if settings.stack.start_workers and settings.api.enabled
        else None,
        "kafka": kafka.as_dict(),
    }


def _print_human(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"data dir {report['data_dir']}\n\n")
    for c in report["components"]:
        state = "up" if c["up"] else "DOWN"
        detail = f"  {c['detail']}" if not c["up"] and c["detail"] else ""
        out.write(f"{c['name']:<18} {state:<5} {c['address']:<40} pid {c['pid'] or '-'}{detail}\n")
    if report["programs"]:
        out.write("\n")
        for p in report["programs"]:
            said = f"  | {describe(p['health'])}" if p["state"] == "RUNNING" else ""
            out.write(f"{p['name']:<22} {p['state']:<9} pid {p['pid'] or '-':<8} {p['description']}{said}\n")
    if report["orphans"]:
        pids = ", ".join(str(o["pid"]) for o in report["orphans"])
        out.write(
            f"\n{len(report['orphans'])} orphaned processes of an earlier supervisord (pids {pids}): "
            "`streamcrawl up` or `streamcrawl down` stops them\n"
        )
    prom = report.get("prometheus")
    if prom:
        state = f"{prom['up']}/{prom['total']} targets up" if not prom["error"] else prom["error"]
        out.write(f"\nprometheus {prom['url']}  {state}\n")
        for line in prom["down"]:
            out.write(f"  down: {line}\n")
    api = report.get("api")
    if api:
        state = "ready" if api["ready"] else ("up" if api["up"] else "DOWN")
        checks = ", ".join(f"{k} {v}" for k, v in api["checks"].items()) or api["detail"]
        out.write(f"\n{'api':<18} {state:<5} {api['address']:<40} {checks}\n")
    kafka = report["kafka"]
    out.write("\n")
    if kafka["error"]:
        out.write(f"kafka: {kafka['error']}\n")
        return
    for name, topic in kafka["topics"].items():
        out.write(f"{name:<18} {topic['partitions']:>3} partitions  end {topic['high_watermark']}\n")
    out.write("\n")
    for group, lag in kafka["groups"].items():
        age = lag.get("oldest_unconsumed_s")
        behind = f", oldest {_hours(age)} of {_hours(lag['retention_s'])} retention" if age else ""
        out.write(f"{group:<30} on {lag['topic']:<16} lag {lag['lag']}{behind}\n")
    out.write("\ndead letters: " + ", ".join(f"{k} {v}" for k, v in kafka["dlq"].items()) + "\n")


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 360 else f"{seconds:.0f} s"


def run(args: argparse.Namespace, settings: Settings) -> int:
    report = collect(settings)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        _print_human(report)
    return 0 if report["up"] else EXIT_DOWN
