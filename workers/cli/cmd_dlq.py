"""`streamcrawl dlq [TOPIC] [--limit N] [--json]`: list dead letters with their reasons."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys

from workers.cli.base import Subparsers
from workers.dlq import read_dead_letters
from workers.errors import ConfigError
from workers.settings import Settings
from workers.topics import DLQ_TOPICS, Topic

__all__ = ["register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("dlq", help="list dead letters with reasons", description=__doc__)
    parser.add_argument(
        "topic", nargs="?", help=f"one of {', '.join(t.name for t in DLQ_TOPICS)} (default: all)"
    )
    parser.add_argument("--limit", type=int, default=100, help="letters per topic (default 100)")
    parser.add_argument("--json", action="store_true", help="one JSON object per letter")
    parser.set_defaults(handler=run)


def _topics(name: str | None) -> tuple[Topic, ...]:
    if name is None:
        return DLQ_TOPICS
    for topic in DLQ_TOPICS:
        if topic.name == name:
            return (topic,)
    raise ConfigError(
        f"unknown dead-letter topic {name!r}; use one of {', '.join(t.name for t in DLQ_TOPICS)}"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.limit < 1:
        raise ConfigError("--limit must be at least 1")
    for topic in _topics(args.topic):
        letters = asyncio.run(read_dead_letters(settings.kafka, topic, limit=args.limit))
        if not args.json:
            sys.stdout.write(f"== {topic.name}: {len(letters)} shown\n")
        for record, letter in letters:
            when = dt.datetime.fromtimestamp(letter.last_failure_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
            row = {
                "dlq": topic.name,
                "offset": record.offset,
                "url": letter.url,
                "stage": letter.stage,
                "error_class": letter.error_class,
                "error": letter.error_message,
                "attempt": letter.attempt,
                "source": f"{letter.source_topic}[{letter.partition}]@{letter.offset}",
                "batch": letter.batch,
                "at": when,
            }
            if args.json:
                sys.stdout.write(json.dumps(row) + "\n")
            else:
                sys.stdout.write(
                    f"{when}  {letter.stage:<15} {letter.error_class:<22} {letter.url or '-'}\n"
                    f"    {letter.error_message}\n"
                )
    return 0
