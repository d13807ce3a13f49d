"""`streamcrawl dlq [replay] [TOPIC] [--batch B] [--error-class C] [--stage S] [--all] [--json]`.

``streamcrawl dlq`` lists dead letters with their reasons: every letter of the dead-letter
topics is read (nothing is committed), filtered, and counted — the totals say how many match,
of how many URLs, and how many were left out as **resolved** (their URL was stored, unchanged
or skipped in its batch since: a replay or a retry succeeded). ``--all`` shows resolved
letters too. ``--limit`` bounds the letters printed per topic, not the totals.

``streamcrawl dlq replay`` re-publishes the matching letters to their source topics with the
same code as Dagster's ``dlq_replay`` job (``workers/dlq/``, through ``workers/triage.py``):
only retryable error classes (unless ``--all-classes`` or an explicit ``--error-class``), each
once it is due (``--backoff`` after its last failure, doubled per attempt), with attempt + 1 in
the Kafka header; letters that are not retryable, already failed ``--max-attempts`` times or
cannot be decoded are parked in PostgreSQL ``dlq_parked`` with their error chain, offsets of the
replay group committed only after the re-publishes were acknowledged. Letters the filters
leave out (resolved ones included, unless ``--all``) stay for a later replay. ``--dry-run``
only reads and reports.

Filters: ``--batch`` (a crawl batch id), ``--error-class`` (``PermanentFetchError``,
``TransientFetchError``, …), ``--stage`` (``ingestor``, ``router``, ``fast_extractor``,
``rich_renderer``, ``storage_writer``, ``discovery``; it also picks that stage's topic).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import json
import sys
from typing import Any

from workers.cli.base import Subparsers
from workers.dlq import ReplayPolicy
from workers.errors import ConfigError
from workers.settings import Settings
from workers.topics import DLQ_TOPICS, Stage, Topic
from workers.triage import LetterFilter, LetterScan, replay_letters, scan_letters

__all__ = ["register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "dlq",
        help="list dead letters with reasons and totals, or replay them",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "words",
        nargs="*",
        metavar="[replay] [TOPIC]",
        help=f"`replay` to replay; TOPIC is one of {', '.join(t.name for t in DLQ_TOPICS)} (default: all)",
    )
    parser.add_argument("--batch", help="only letters of this crawl batch")
    parser.add_argument("--error-class", help="only letters of this error class")
    parser.add_argument("--stage", choices=[s.value for s in Stage], help="only letters of this stage")
    parser.add_argument("--all", action="store_true", help="include letters whose URL was stored since")
    parser.add_argument("--json", action="store_true", help="print one JSON object (totals and letters)")
    parser.add_argument("--limit", type=int, default=100, help="letters printed per topic (default 100)")
    parser.add_argument(
        "--max-records",
        type=int,
        default=10_000,
        help="replay: letters read at most per topic (default 10000)",
    )
    parser.add_argument(
        "--max-attempts",
        type=int,
        help="replay: park letters that failed this many times (default STREAMCRAWL_DAGSTER_DLQ_MAX_ATTEMPTS)",
    )
    parser.add_argument(
        "--backoff",
        type=float,
        metavar="S",
        help="replay: a letter is due this long after its last failure, doubled per attempt "
        "(default STREAMCRAWL_DAGSTER_DLQ_REPLAY_BACKOFF_S; 0 = now)",
    )
    parser.add_argument(
        "--all-classes",
        action="store_true",
        help="replay: non-retryable letters too (404s, robots refusals...) — only once their cause is fixed",
    )
    parser.add_argument("--dry-run", action="store_true", help="replay: only read and report")
    parser.set_defaults(handler=run)


def _topic(name: str) -> Topic:
    for topic in DLQ_TOPICS:
        if topic.name == name:
            return topic
    raise ConfigError(
        f"unknown dead-letter topic {name!r}; use one of {', '.join(t.name for t in DLQ_TOPICS)}"
    )


def _parse_words(words: list[str]) -> tuple[bool, Topic | None]:
    replay = bool(words) and words[0] == "replay"
    rest = words[1:] if replay else words
    if len(rest) > 1:
        raise ConfigError(f"one topic at most, got {' '.join(rest)}")
    return replay, _topic(rest[0]) if rest else None


def _when(ts: float) -> str:
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _totals(scans: list[LetterScan]) -> dict[str, Any]:
    by_class: dict[str, int] = {}
    for s in scans:
        for k, v in s.by_error_class.items():
            by_class[k] = by_class.get(k, 0) + v
    return {
        "read": sum(s.read for s in scans),
        "matched": sum(s.matched for s in scans),
        "urls": sum(s.urls for s in scans),
        "resolved_hidden": sum(s.resolved_hidden for s in scans),
        "by_error_class": dict(sorted(by_class.items(), key=lambda kv: -kv[1])),
    }


def _print_scans(scans: list[LetterScan], filt: LetterFilter, *, limit: int) -> None:
    out = sys.stdout
    for s in scans:
        hidden = (
            f"; {s.resolved_hidden} resolved since, not shown (--all shows them)" if s.resolved_hidden else ""
        )
        out.write(f"== {s.topic.name}: {s.matched} letters match ({s.urls} URLs) of {s.read} read{hidden}\n")
        if s.by_error_class:
            out.write("   " + ", ".join(f"{k} {v}" for k, v in s.by_error_class.most_common()) + "\n")
        for row in s.shown:
            batch = f"  [{row['batch']}]" if row["batch"] else ""
            out.write(
                f"{_when(row['last_failure_at'])}  {row['stage']:<15} {row['error_class']:<22} "
                f"{row['url'] or '-'}{batch}\n    attempt {row['attempt']}: {row['error']}\n"
            )
        if s.matched > len(s.shown):
            out.write(f"   … {s.matched - len(s.shown)} more (--limit shows up to {limit} per topic)\n")
    t = _totals(scans)
    out.write(
        f"total: {t['matched']} letters ({t['urls']} URLs)"
        + (f" match {filt.describe()}" if filt.describe() != "all letters" else "")
        + (f"; {t['resolved_hidden']} resolved since" if t["resolved_hidden"] else "")
        + "\n"
    )


def _list(args: argparse.Namespace, settings: Settings, filt: LetterFilter, topic: Topic | None) -> int:
    if args.limit < 0:
        raise ConfigError("--limit must be 0 or more")
    topics = filt.topics(topic)
    scans = asyncio.run(
        scan_letters(settings.kafka, settings.postgres, filt, topics=topics, limit=args.limit)
    )
    if args.json:
        doc = {
            "filter": {
                "batch": filt.batch,
                "error_class": filt.error_class,
                "stage": filt.stage,
                "all": args.all,
            },
            "total": _totals(scans),
            "topics": {
                s.topic.name: {
                    "read": s.read,
                    "matched": s.matched,
                    "urls": s.urls,
                    "resolved_hidden": s.resolved_hidden,
                    "by_error_class": dict(s.by_error_class),
                }
                for s in scans
            },
            "letters": [row for s in scans for row in s.shown],
        }
        sys.stdout.write(json.dumps(doc) + "\n")
    else:
        _print_scans(scans, filt, limit=args.limit)
    return 0


def _replay(args: argparse.Namespace, settings: Settings, filt: LetterFilter, topic: Topic | None) -> int:
    if args.max_records < 1:
        raise ConfigError("--max-records must be at least 1")
    if args.backoff is not None and args.backoff < 0:
        raise ConfigError("--backoff must be 0 or more seconds")
    policy = ReplayPolicy(
        max_attempts=args.max_attempts or settings.dagster.dlq_max_attempts,
        backoff_s=settings.dagster.dlq_replay_backoff_s if args.backoff is None else args.backoff,
        retryable_only=not args.all_classes,
        error_class=filt.error_class,
    )
    reports = [
        asyncio.run(
            replay_letters(
                settings.kafka,
                settings.postgres,
                t,
                filt,
                max_records=args.max_records,
                policy=policy,
                dry_run=args.dry_run,
            )
        )
        for t in filt.topics(topic)
    ]
    if args.json:
        sys.stdout.write(json.dumps([dataclasses.asdict(r) for r in reports]) + "\n")
        return 0
    for r in reports:
        dry = " (dry run: nothing published, parked or committed)" if r.dry_run else ""
        sys.stdout.write(
            f"{r.topic}: read {r.read}, replayed {r.replayed}, parked {r.parked}, "
            f"resolved since {r.resolved} (committed, not replayed), left for later {r.skipped}, "
            f"partitions waiting for a due letter {r.waiting}{dry}\n"
        )
        for p in r.parked_letters:
            sys.stdout.write(
                f"    parked {p['error_class']} attempt {p['attempt']}: {p['url'] or '-'} ({p['reason']})\n"
            )
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    replay, topic = _parse_words(list(args.words))
    filt = LetterFilter(
        batch=args.batch, error_class=args.error_class, stage=args.stage, include_resolved=args.all
    )
    return (_replay if replay else _list)(args, settings, filt, topic)
