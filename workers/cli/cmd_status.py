"""`streamcrawl status [--json]`: components, worker programs, topic ends, group lag, DLQ depths, batches."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

from workers.cli.base import Subparsers
from workers.cli.progress_view import batch_line
from workers.errors import StreamCrawlError
from workers.ledger import BatchProgress, recent_progress
from workers.ledger.follow import connect
from workers.settings import Settings
from workers.stack.kafka_status import KafkaStatus, kafka_status
from workers.stack.stack import Stack

__all__ = ["EXIT_DOWN", "register", "run"]

EXIT_DOWN = 3
"""Exit status when a component the configuration starts is down (like `systemctl status`)."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "status",
        help="show the stack's components, workers, topics, lag and DLQs",
        description=(
            "Each component up/down with its address and PID, each worker program's supervisord "
            f"state, per-topic log end, per-group lag, DLQ depths and the progress of the open and "
            f"latest crawl batches. Exits {EXIT_DOWN} when an enabled component is down."
        ),
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


async def _batches(settings: Settings) -> tuple[list[BatchProgress], str | None]:
    try:
        conn = await connect(settings)
    except StreamCrawlError as exc:
        return [], str(exc)
    try:
        return await recent_progress(conn), None
    finally:
        await conn.close()


def _uptime(description: str) -> str:
    """supervisord's ``pid 123, uptime 0:01:02`` without the pid (shown in its own column)."""
    head, sep, rest = description.partition(", ")
    return rest if sep and head.startswith("pid ") else description


def collect(settings: Settings) -> dict[str, Any]:
    stack = Stack(settings)
    components = stack.status()
    programs = stack.supervisor.programs() if stack.supervisor.pid() is not None else []
    broker_up = any(c.name == stack.broker.name and c.up for c in components)
    kafka = asyncio.run(kafka_status(settings.kafka)) if broker_up else KafkaStatus(error="broker is down")
    enabled = {c.name for c in stack.components() if stack.enabled(c)}
    # Asked of PostgreSQL itself, not of the component: it may be an external server.
    batches, batch_error = asyncio.run(_batches(settings))
    return {
        "up": all(c.up for c in components if c.name in enabled),
        "data_dir": str(stack.paths.root),
        "components": [c.as_dict() for c in components],
        "programs": [p.as_dict() for p in programs],
        "kafka": kafka.as_dict(),
        "batches": [{**b.summary(), "line": batch_line(b)} for b in batches],
        "batches_error": batch_error,
    }


def _print_human(report: dict[str, Any]) -> None:
    out = sys.stdout
    out.write(f"data dir {report['data_dir']}\n\n")
    for c in report["components"]:
        state = "up" if c["up"] else "DOWN"
        out.write(f"{c['name']:<18} {state:<5} {c['address']:<40} pid {c['pid'] or '-'}\n")
    if report["programs"]:
        out.write("\n")
        for p in report["programs"]:
            out.write(
                f"{p['name']:<22} {p['state']:<9} pid {p['pid'] or '-':<8} {_uptime(p['description'])}\n"
            )
    kafka = report["kafka"]
    out.write("\n")
    if kafka["error"]:
        out.write(f"kafka: {kafka['error']}\n")
        _print_batches(report)
        return
    for name, topic in kafka["topics"].items():
        out.write(f"{name:<18} {topic['partitions']:>3} partitions  end {topic['high_watermark']}\n")
    out.write("\n")
    for group, lag in kafka["groups"].items():
        out.write(f"{group:<30} on {lag['topic']:<16} lag {lag['lag']}\n")
    out.write("\ndead letters: " + ", ".join(f"{k} {v}" for k, v in kafka["dlq"].items()) + "\n")
    _print_batches(report)


def _print_batches(report: dict[str, Any]) -> None:
    out = sys.stdout
    if report["batches_error"]:
        out.write(f"\nbatches: {report['batches_error']}\n")
    elif report["batches"]:
        out.write("\nbatches (open first, then the latest):\n")
        for b in report["batches"]:
            out.write(f"  {b['line']}\n")


def run(args: argparse.Namespace, settings: Settings) -> int:
    report = collect(settings)
    if args.json:
        sys.stdout.write(json.dumps(report) + "\n")
    else:
        _print_human(report)
    return 0 if report["up"] else EXIT_DOWN
