"""`streamcrawl down`: stop everything `up` started, by PID, in reverse order."""

from __future__ import annotations

import argparse
import sys
import time

from workers.cli.base import Subparsers
from workers.settings import Settings
from workers.stack.paths import StackPaths
from workers.stack.stack import stop_recorded

__all__ = ["register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "down",
        help="stop the embedded stack",
        description=(
            "Stop supervisord (and the workers), Dagster, PostgreSQL, the broker and S3 by the PIDs "
            "recorded under STREAMCRAWL_DATA_DIR: SIGTERM (SIGINT for PostgreSQL), then SIGKILL of "
            "whatever is left of each process tree. Data stays in the data dir."
        ),
    )
    parser.set_defaults(handler=run)


def _stopped(name: str, was_running: bool, seconds: float) -> None:
    state = f"stopped ({seconds:.1f} s)" if was_running else "not running"
    sys.stdout.write(f"{name:<18} {state}\n")
    sys.stdout.flush()


def run(args: argparse.Namespace, settings: Settings) -> int:
    started = time.monotonic()
    paths = StackPaths.at(settings.stack.data_dir)
    stop_recorded(paths, on_stopped=_stopped)
    sys.stdout.write(f"stack down in {time.monotonic() - started:.1f} s\n")
    return 0
