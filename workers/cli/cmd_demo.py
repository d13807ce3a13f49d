"""`streamcrawl demo [--hosts N] [--per-host M] [--json]`: crawl the offline demo web.

Starts the demo web (generated sites under ``*.demo.test`` on 127.0.0.1, failures
included: 404/500/429, redirects, robots.txt, timeouts, huge and non-HTML pages, bad
charsets, JavaScript-only pages) and crawls it through the running stack, waiting until
every URL is stored or dead-lettered. The workers must resolve the demo hosts to
loopback: `make run` starts the stack with STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES and
STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS set for that.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter

from workers.cli.base import Subparsers
from workers.cli.cmd_crawl import add_scope_arguments
from workers.cli.progress_view import ProgressView
from workers.demoweb import DEMO_SUFFIX, demo_urls
from workers.errors import ConfigError
from workers.frontier import parse_list_lines
from workers.ledger import BatchSpec
from workers.ledger.follow import run_batch
from workers.settings import Settings
from workers.stack.demoweb import DemoWebServer
from workers.stack.paths import StackPaths

__all__ = ["register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="crawl the offline demo web through the running stack",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--hosts", type=int, default=60, help="demo sites (default 60)")
    parser.add_argument("--per-host", type=int, default=10, help="URLs per site (default 10)")
    parser.add_argument("--json", action="store_true", help="end with the summary as one JSON line")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    add_scope_arguments(parser)
    parser.set_defaults(handler=run)


def _check_overrides(settings: Settings) -> None:
    overrides = settings.ingestor.resolve_overrides
    if (
        not any(host.endswith(DEMO_SUFFIX) for host in overrides)
        or not settings.ingestor.allow_private_networks
    ):
        raise ConfigError(
            "the demo hosts must resolve to 127.0.0.1: set "
            'STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES=\'{"*.demo.test": "127.0.0.1"}\' and '
            "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS=true before `streamcrawl up` (make run does)"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    from workers.cli.cmd_crawl import new_batch_id, scope_from_args

    if args.hosts < 1 or args.per_host < 1:
        raise ConfigError("--hosts and --per-host must be at least 1")
    _check_overrides(settings)
    paths = StackPaths.at(settings.stack.data_dir)
    paths.ensure()
    web = DemoWebServer(stack=settings.stack, paths=paths)
    web.ensure_running()
    # Timeouts of the demo's slow pages sit just above the ingestor's total timeout.
    delay = settings.ingestor.total_timeout_s + 5
    urls = demo_urls(port=web.port, hosts=args.hosts, per_host=args.per_host, timeout_delay_s=delay)
    expected = Counter(u.expected for u in urls)
    either = expected.get("any", 0)  # kinds that may end either way (stored or not)
    sys.stderr.write(
        f"demo web on {web.address()}; crawling {len(urls)} URLs over {args.hosts} hosts: expect "
        + ", ".join(
            f"{k.replace('_', '-')} {n}" + (f"-{n + either}" if k == "stored" and either else "")
            for k, n in sorted(expected.items())
            if k != "any"
        )
        + (f" ({either} URLs may end either way)" if either else "")
        + "\n"
    )
    parsed = parse_list_lines([u.url for u in urls], scheme="http")
    batch = new_batch_id("demo")
    spec = BatchSpec(batch=batch, origin="demo", scope=scope_from_args(args), sitemaps=args.sitemaps)
    view = ProgressView(total=len(parsed.entries))
    try:
        _result, progress = asyncio.run(
            run_batch(settings, spec, parsed.entries, wait=True, timeout_s=args.timeout, on_tick=view.update)
        )
    finally:
        view.close()
    assert progress is not None
    summary = {**progress.summary(), "lost": progress.in_flight}
    if progress.dead_by_reason:
        sys.stderr.write("dead letters by error class: " + json.dumps(progress.dead_by_reason) + "\n")
    sys.stderr.write(
        "see them with `streamcrawl dlq`, export pages with `streamcrawl export -o pages.jsonl`\n"
    )
    if args.json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        sys.stdout.write(
            f"demo: requested {summary['requested']}, stored {summary['stored']}, "
            f"dead-lettered {summary['dead_lettered']}, lost {summary['lost']}\n"
        )
    return 0 if summary["lost"] == 0 else 1
