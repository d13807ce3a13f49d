"""`streamcrawl crawl FILE|URL… [--wait] [--json]`: publish a list into ``crawl.request``.

A Tranco CSV (``rank,domain``), a URL/domain list file, or URLs on the command line.
``--wait`` follows the batch through the pipeline with a live progress line until every
URL is stored or dead-lettered (or ``--timeout`` passes); ``--json`` prints the final
summary ``{requested, stored, dead_lettered, lost, …}`` as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

from workers.cli.base import Subparsers
from workers.cli.progress_view import ProgressView
from workers.errors import ConfigError
from workers.frontier import ParsedList, build_request, parse_list_lines, publish_requests, read_list_file
from workers.progress import BatchProgress, ProgressTracker
from workers.settings import Settings

__all__ = ["crawl", "load_targets", "register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "crawl",
        help="publish a Tranco CSV, a URL list or URLs into crawl.request",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("targets", nargs="+", metavar="FILE|URL", help="list files and/or URLs/domains")
    parser.add_argument(
        "--wait", action="store_true", help="follow the batch until every URL is accounted for"
    )
    parser.add_argument("--json", action="store_true", help="print the final summary as one JSON line")
    parser.add_argument("--batch", help="batch id recorded with every URL (default: a new cli-… id)")
    parser.add_argument(
        "--scheme", choices=("https", "http"), default="https", help="scheme for bare domains (default https)"
    )
    parser.add_argument("--recrawl", action="store_true", help="fetch again even if already stored")
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="--wait gives up after this many seconds"
    )
    parser.set_defaults(handler=run)


def load_targets(targets: list[str], *, scheme: str) -> ParsedList:
    """Files are read as lists; anything else must be a URL or a domain."""
    merged = ParsedList()
    inline: list[str] = []
    for target in targets:
        path = Path(target)
        if path.is_file():
            parsed = read_list_file(path, scheme=scheme)
            merged.entries.extend(parsed.entries)
            merged.rejected.extend(parsed.rejected)
        elif path.suffix.lower() in (".csv", ".txt", ".lst") or ("/" in target and "." not in target):
            raise ConfigError(f"list file not found: {target} (check the path)")
        else:
            inline.append(target)
    if inline:
        parsed = parse_list_lines(inline, scheme=scheme)
        for _number, line, reason in parsed.rejected:
            raise ConfigError(f"not a URL or domain: {line!r} ({reason})")
        merged.entries.extend(parsed.entries)
    unique = {e.url: e for e in reversed(merged.entries)}  # first occurrence wins
    merged.entries = [e for e in merged.entries if unique.get(e.url) is e]
    if not merged.entries:
        raise ConfigError("nothing to crawl: the inputs contain no valid URL or domain")
    return merged


async def crawl(
    settings: Settings,
    parsed: ParsedList,
    *,
    batch: str,
    wait: bool,
    timeout_s: float,
    recrawl: bool = False,
    view: ProgressView | None = None,
) -> BatchProgress | None:
    requests = [build_request(e.url, batch=batch, rank=e.rank, recrawl=recrawl) for e in parsed.entries]
    tracker = ProgressTracker(settings.kafka, batch=batch, requested=len(requests))
    if wait:
        await tracker.mark_start()
    await publish_requests(settings.kafka, requests)
    if not wait:
        return None
    return await tracker.follow(timeout_s=timeout_s, on_tick=view.update if view else None)


def run(args: argparse.Namespace, settings: Settings) -> int:
    parsed = load_targets(args.targets, scheme=args.scheme)
    batch = args.batch or f"cli-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    for number, line, reason in parsed.rejected[:10]:
        sys.stderr.write(f"skipped line {number}: {line!r}: {reason}\n")
    if len(parsed.rejected) > 10:
        sys.stderr.write(f"… {len(parsed.rejected) - 10} more invalid lines skipped\n")
    view = ProgressView(total=len(parsed.entries)) if args.wait else None
    try:
        progress = asyncio.run(
            crawl(
                settings,
                parsed,
                batch=batch,
                wait=args.wait,
                timeout_s=args.timeout,
                recrawl=args.recrawl,
                view=view,
            )
        )
    finally:
        if view is not None:
            view.close()
    if progress is None:
        out = {"batch": batch, "requested": len(parsed.entries), "rejected": len(parsed.rejected)}
        sys.stdout.write(
            json.dumps(out) + "\n" if args.json else f"published {out['requested']} URLs as batch {batch}\n"
        )
        return 0
    summary = {"batch": batch, **progress.summary(), "rejected": len(parsed.rejected)}
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(
            f"batch {batch}: requested {summary['requested']}, stored {summary['stored']}, "
            f"dead-lettered {summary['dead_lettered']}, lost {summary['lost']} "
            f"in {summary['elapsed_s']} s\n"
        )
    if summary["lost"]:
        sys.stderr.write(
            f"{summary['lost']} URLs were not accounted for within {args.timeout:.0f} s: "
            "check `streamcrawl status` (are the workers up?) and wait longer with --timeout\n"
        )
        return 1
    return 0
