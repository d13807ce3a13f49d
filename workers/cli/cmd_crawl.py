"""`streamcrawl crawl FILE|URL… [--depth N --scope host|domain|any …] [--wait] [--json]`.

Publishes a Tranco CSV (``rank,domain``), a URL/domain list file, or URLs given on the
command line as one crawl batch. ``--depth 0`` (the default) fetches exactly the listed URLs;
with ``--depth N`` the discovery stage follows links up to N hops within ``--scope``
(``host``: the listed URL's host; ``domain``: its registered domain; ``any``), under the
budgets ``--max-pages-per-host`` and ``--max-pages``, keeping only URLs matching an
``--include`` pattern (if given) and none of the ``--exclude`` patterns. ``rel=nofollow``
links are not followed unless ``--follow-nofollow``. ``--sitemaps`` also seeds the batch from
each host's robots.txt ``Sitemap:`` lines and ``/sitemap.xml``.

URLs already stored are skipped (counted as skipped: already_stored) unless ``--recrawl``,
which fetches them again with If-None-Match / If-Modified-Since.

``--wait`` follows the batch until every URL it requested — listed and discovered — is
stored, unchanged, skipped or dead-lettered (or ``--timeout`` passes); ``--json`` prints the
final summary as one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid

from workers.cli.base import Subparsers
from workers.cli.list_input import load_targets
from workers.cli.progress_view import ProgressView
from workers.ledger import BatchProgress, BatchSpec
from workers.ledger.follow import run_batch
from workers.messages import Scope
from workers.scope import SCOPE_MODES, validate_scope
from workers.settings import Settings

__all__ = ["add_scope_arguments", "register", "run", "scope_from_args"]


def add_scope_arguments(parser: argparse.ArgumentParser) -> None:
    """The scope and budget options shared by `crawl` and `demo`."""
    group = parser.add_argument_group("scope and budgets")
    group.add_argument(
        "--depth", type=int, default=0, help="link hops to follow from the listed URLs (default 0: only them)"
    )
    group.add_argument(
        "--scope", choices=SCOPE_MODES, default="host", help="which links to follow (default host)"
    )
    group.add_argument("--max-pages-per-host", type=int, help="URLs requested per host at most")
    group.add_argument("--max-pages", type=int, help="URLs requested by the whole batch at most")
    group.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="RE",
        help="follow only URLs matching RE (repeatable)",
    )
    group.add_argument(
        "--exclude",
        action="append",
        default=[],
        metavar="RE",
        help="never follow URLs matching RE (repeatable)",
    )
    group.add_argument("--follow-nofollow", action="store_true", help="follow rel=nofollow links too")
    group.add_argument(
        "--sitemaps", action="store_true", help="also seed from robots.txt Sitemap: lines and /sitemap.xml"
    )


def scope_from_args(args: argparse.Namespace) -> Scope:
    return validate_scope(
        Scope(
            mode=args.scope,
            max_depth=args.depth,
            max_pages_per_host=args.max_pages_per_host,
            max_pages=args.max_pages,
            include=list(args.include),
            exclude=list(args.exclude),
            follow_nofollow=args.follow_nofollow,
        )
    )


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "crawl",
        help="publish a Tranco CSV, a URL list or URLs as one crawl batch",
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
    parser.add_argument(
        "--recrawl", action="store_true", help="fetch again (conditionally) if already stored"
    )
    parser.add_argument(
        "--timeout", type=float, default=1800.0, help="--wait gives up after this many seconds"
    )
    add_scope_arguments(parser)
    parser.set_defaults(handler=run)


def new_batch_id(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def run(args: argparse.Namespace, settings: Settings) -> int:
    scope = scope_from_args(args)
    parsed = load_targets(args.targets, scheme=args.scheme)
    batch = args.batch or new_batch_id("cli")
    for number, line, reason in parsed.rejected[:10]:
        sys.stderr.write(f"skipped line {number}: {line!r}: {reason}\n")
    if len(parsed.rejected) > 10:
        sys.stderr.write(f"… {len(parsed.rejected) - 10} more invalid lines skipped\n")
    spec = BatchSpec(batch=batch, origin="cli", scope=scope, recrawl=args.recrawl, sitemaps=args.sitemaps)
    view = ProgressView(total=len(parsed.entries)) if args.wait else None
    try:
        result, progress = asyncio.run(
            run_batch(
                settings,
                spec,
                parsed.entries,
                wait=args.wait,
                timeout_s=args.timeout,
                on_tick=view.update if view else None,
            )
        )
    finally:
        if view is not None:
            view.close()
    if progress is None:
        out = {
            "batch": batch,
            "listed": result.listed,
            "published": result.published,
            "already_stored": result.already_stored,
            "rejected": len(parsed.rejected),
        }
        sys.stdout.write(
            json.dumps(out) + "\n"
            if args.json
            else f"published {result.published} requests as batch {batch}"
            f" ({result.already_stored} already stored, skipped)\n"
        )
        return 0
    return report(progress, args=args, rejected=len(parsed.rejected))


def report(progress: BatchProgress, *, args: argparse.Namespace, rejected: int) -> int:
    """Print the final summary; exit 1 when URLs are still in flight at the timeout."""
    summary = {**progress.summary(), "rejected": rejected, "lost": progress.in_flight}
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(
            f"batch {progress.batch}: requested {summary['requested']} ({summary['discovered']} discovered),"
            f" stored {summary['stored']}, unchanged {summary['unchanged']}, skipped {summary['skipped']},"
            f" dead-lettered {summary['dead_lettered']}, in flight {summary['in_flight']}"
            f" in {summary['duration_s']} s\n"
        )
    if progress.in_flight:
        sys.stderr.write(
            f"{progress.in_flight} URLs were not accounted for within {args.timeout:.0f} s: "
            "check `streamcrawl status` (are the workers up?) and wait longer with --timeout\n"
        )
        return 1
    return 0
