"""`streamcrawl up`: start the embedded stack, or leave it alone where it already runs."""

from __future__ import annotations

import argparse
import sys
import time

from workers.cli.base import Subparsers
from workers.provision import ProvisionReport
from workers.settings import Settings
from workers.stack.stack import Stack, StartEvent

__all__ = ["register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "up",
        help="start the embedded stack (idempotent)",
        description=(
            "Start S3 (SeaweedFS), the broker (Tansu), PostgreSQL, provision the topics, then "
            "Dagster and supervisord with the workers, all on 127.0.0.1 with state under "
            "STREAMCRAWL_DATA_DIR. Running components are left alone; dead ones are restarted."
        ),
    )
    parser.set_defaults(handler=run)


def _started(event: StartEvent) -> None:
    sys.stdout.write(
        f"{event.name:<18} {event.outcome.value:<9} {event.address:<40} pid {event.pid}"
        f"  ({event.seconds:.1f} s)\n"
    )
    if event.note:
        sys.stdout.write(f"{'':<18} {event.note}\n")
    sys.stdout.flush()


def _provisioned(report: ProvisionReport) -> None:
    sys.stdout.write(f"{'topics':<18} {report.summary()}\n")
    for drift in report.drift:
        sys.stdout.write(f"{'':<18} drift: {drift} (left as is; fix by hand if intended)\n")
    sys.stdout.flush()


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    stack = Stack(settings)
    stack.up(on_started=_started, on_provisioned=_provisioned)
    sys.stdout.write(f"stack up in {time.monotonic() - started:.1f} s; state in {stack.paths.root}\n")
    return 0
