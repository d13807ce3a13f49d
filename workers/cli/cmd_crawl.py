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
stored, unchanged, skipped or dead-lettered (or ``--timeout`` passes), then prints the
outcome with a breakdown by reason (one example URL each); ``--json`` prints it as one JSON
line on stdout instead.

Targets: a URL is a URL (``https://x/robots.txt``, and ``ftp://…`` is refused as a non-HTTP(S)
scheme, not looked up as a file); an existing file is a list (Tranco CSV, plain, gzipped or
Tranco's ZIP, or one URL/domain per line); every refused line is reported with its line number
and why. ``--dry-run`` only reads the inputs and lists what would be crawled and every refused
line (``--json``: one object), publishing nothing.

Exit status with ``--wait``:

* 0 — every URL accounted for, something stored (or everything was already stored), and
  the dead-lettered share at most ``--max-dead-share``;
* 1 — an error (one line on stderr saying what to fix);
* 4 — ``--timeout`` passed with URLs still in flight;
* 5 — nothing was stored: every URL was dead-lettered or skipped;
* 6 — more than ``--max-dead-share`` of the requested URLs were dead-lettered.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid

from workers.cli.base import Subparsers
from workers.cli.crawl_report import batch_hints, print_rejected, report, verdict
from workers.cli.list_input import Targets, load_targets
from workers.cli.progress_view import ProgressView
from workers.errors import ConfigError
from workers.ledger import BatchSpec, fetch_budget_s
from workers.ledger.follow import run_batch
from workers.messages import Scope
from workers.scope import SCOPE_MODES, validate_scope
from workers.settings import Settings

__all__ = ["add_scope_arguments", "new_batch_id", "register", "run", "scope_from_args"]


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
        "--timeout", type=float, default=1800.0, help="--wait gives up after this many seconds (exit 4)"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="only read the inputs: report what would be crawled and every refused line; publish nothing",
    )
    parser.add_argument(
        "--max-dead-share",
        type=float,
        default=0.5,
        metavar="F",
        help="--wait exits 6 when more than this share of the requested URLs was dead-lettered (default 0.5)",
    )
    add_scope_arguments(parser)
    parser.set_defaults(handler=run)


def new_batch_id(prefix: str) -> str:
    return f"{prefix}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


def _dry_run(targets: Targets, *, json_out: bool) -> int:
    """``--dry-run``: the inputs as the batch would get them, every refused line included."""
    refused = [
        {"file": name, "line": r.line, "text": r.text, "reason": r.reason} for name, r in targets.rejected
    ]
    if json_out:
        sys.stdout.write(json.dumps({"urls": len(targets.entries), "rejected": refused}) + "\n")
        return 0
    for entry in targets.entries:
        sys.stdout.write(entry.url + "\n")
    print_rejected(targets.rejected, several_files=len({r["file"] for r in refused}) > 1, limit=None)
    sys.stderr.write(f"{len(targets.entries)} URLs would be crawled, {len(refused)} lines refused\n")
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    if not 0.0 <= args.max_dead_share <= 1.0:
        raise ConfigError(f"--max-dead-share must be between 0 and 1, not {args.max_dead_share}")
    scope = scope_from_args(args)
    targets = load_targets(args.targets, scheme=args.scheme)
    batch = args.batch or new_batch_id("cli")
    if args.dry_run:
        return _dry_run(targets, json_out=args.json)
    print_rejected(targets.rejected, several_files=len({name for name, _ in targets.rejected}) > 1)
    spec = BatchSpec(batch=batch, origin="cli", scope=scope, recrawl=args.recrawl, sitemaps=args.sitemaps)
    view = (
        ProgressView(total=len(targets.entries), budget_s=fetch_budget_s(settings.ingestor))
        if args.wait
        else None
    )
    try:
        result, progress = asyncio.run(
            run_batch(
                settings,
                spec,
                targets.entries,
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
            "rejected": len(targets.rejected),
        }
        sys.stdout.write(
            json.dumps(out) + "\n"
            if args.json
            else f"published {result.published} requests as batch {batch}"
            f" ({result.already_stored} already stored, skipped; follow it with `streamcrawl status`)\n"
        )
        return 0
    outcome = verdict(progress, max_dead_share=args.max_dead_share, timeout_s=args.timeout)
    hints = asyncio.run(batch_hints(settings, progress.batch)) if progress.dead_lettered else []
    return report(progress, outcome, json_out=args.json, rejected=len(targets.rejected), hints=hints)
