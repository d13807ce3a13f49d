"""`streamcrawl provision`: create missing topics of the registry; report drift, destroy nothing.

Exits 0 when every topic exists afterwards, drift included (drift is reported, not fixed:
changing partitions or configs of a live topic is an operator's decision).
"""

from __future__ import annotations

import argparse
import asyncio
import sys

from workers.cli.base import Subparsers
from workers.provision import provision
from workers.settings import Settings

__all__ = ["register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("provision", help="create missing Kafka topics", description=__doc__)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, settings: Settings) -> int:
    report = asyncio.run(provision(settings.kafka))
    sys.stdout.write(f"topics: {report.summary()}\n")
    return 0
