"""`streamcrawl demo [--hosts N] [--depth N] [--scope host|domain|any] [--json]`: crawl the offline demo web.

Starts the demo web (generated sites under ``*.demo.test`` on 127.0.0.1: sections, paginated
listings, articles, a blog subdomain, an infinite calendar, nofollow/noindex pages, robots.txt
rules, sitemaps, links to other demo sites, and failures: 404/500/429, redirects, timeouts,
huge and non-HTML pages, bad charsets, JavaScript-only pages), lists the home pages of
site-001..site-N as one batch with the given scope, crawls it through the running stack and
compares what was stored with what the demo web's oracle says a correct crawl stores.

``--json`` ends with one line: ``expected``, ``stored``, ``dead_lettered``, ``skipped`` (by
reason), ``discovered``, ``unexpected`` (stored but not expected), ``missing`` (expected but
not stored), ``lost`` (never accounted for), see workers/demoweb/report.py. The exit status is
0 when nothing is lost, unexpected or missing.

The workers must resolve the demo hosts to loopback: `make run` starts the stack with
STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES and STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS set
for that, and discovery needs STREAMCRAWL_DISCOVERY_EXTRA_SUFFIXES='["demo.test"]' so that
``blog.site-001.demo.test`` is on the domain of ``site-001.demo.test``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence

import asyncpg

from workers.cli.base import Subparsers
from workers.cli.cmd_crawl import new_batch_id
from workers.cli.progress_view import ProgressView
from workers.demoweb import DEMO_SUFFIX, DemoWebConfig, demo_host, demo_urls
from workers.demoweb.oracle import expect_crawl
from workers.demoweb.report import CrawlProgress, ProgressCounts, demo_report
from workers.errors import ConfigError
from workers.frontier import parse_list_lines
from workers.ledger import BatchSpec
from workers.ledger.follow import connect, run_batch
from workers.messages import Scope
from workers.scope import SCOPE_MODES, validate_scope
from workers.settings import Settings
from workers.stack.demoweb import DemoWebServer
from workers.stack.paths import StackPaths
from workers.storage.pages import pg_errors

__all__ = ["publish_and_wait", "register", "run", "stored_urls"]

DEFAULT_HOSTS = 40
DEFAULT_DEPTH = 2
"""40 sites at depth 2 is ~2,700 URLs (~2,450 pages stored): a few minutes on a laptop."""


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="crawl the offline demo web through the running stack and check the result",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--hosts", type=int, default=DEFAULT_HOSTS, help=f"demo sites (default {DEFAULT_HOSTS})"
    )
    parser.add_argument(
        "--depth",
        type=int,
        default=DEFAULT_DEPTH,
        help=f"link hops from the home pages (default {DEFAULT_DEPTH})",
    )
    parser.add_argument(
        "--scope", choices=SCOPE_MODES, default="domain", help="host | domain (default) | any"
    )
    parser.add_argument("--max-pages-per-host", type=int, help="budget of URLs per host")
    parser.add_argument("--max-pages", type=int, help="budget of URLs for the batch")
    parser.add_argument("--sitemaps", action="store_true", help="also seed each site from its sitemaps")
    parser.add_argument(
        "--per-host",
        type=int,
        default=1,
        help="URLs listed per site: 1 (default) the home page; more lists a mix of every URL kind",
    )
    parser.add_argument("--json", action="store_true", help="end with the summary as one JSON line")
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
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


def _listed(args: argparse.Namespace, port: int, timeout_delay_s: float) -> list[str]:
    if args.per_host <= 1:
        return [f"http://{demo_host(i)}:{port}/" for i in range(1, args.hosts + 1)]
    mix = demo_urls(port=port, hosts=args.hosts, per_host=args.per_host, timeout_delay_s=timeout_delay_s)
    return [u.url for u in mix]


async def publish_and_wait(
    settings: Settings,
    urls: Sequence[str],
    *,
    scope: Scope,
    batch: str,
    sitemaps: bool,
    timeout_s: float,
    recrawl: bool = True,
    view: ProgressView | None = None,
) -> tuple[CrawlProgress, set[str]]:
    """Publish ``urls`` as one batch with ``scope``, wait until every URL it requests is
    accounted for, and return its progress and the url_hashes it stored.

    ``recrawl``: fetch pages an earlier run stored again (else a second demo run would skip
    them as already stored and compare nothing); the demo web sends no validators, so every
    page is fetched in full.
    """
    spec = BatchSpec(batch=batch, origin="demo", scope=scope, sitemaps=sitemaps, recrawl=recrawl)
    entries = parse_list_lines(list(urls), scheme="http").entries
    _result, progress = await run_batch(
        settings, spec, entries, wait=True, timeout_s=timeout_s, on_tick=view.update if view else None
    )
    assert progress is not None
    conn = await connect(settings)
    try:
        stored = await stored_urls(conn, batch)
    finally:
        await conn.close()
    counts = ProgressCounts(
        requested=progress.requested,
        stored=progress.stored,
        dead_lettered=progress.dead_lettered,
        lost=progress.in_flight,
        discovered=progress.discovered,
        skipped=dict(progress.skipped_by_reason),
    )
    return counts, stored


async def stored_urls(conn: asyncpg.Connection, batch: str) -> set[str]:
    """url_hashes the batch stored: its ledger rows in state stored/unchanged that have a page row."""
    with pg_errors("read of the batch's stored pages"):  # a one-line CLI error, not a traceback
        rows = await conn.fetch(
            "SELECT u.url_hash FROM crawl_urls u JOIN pages p USING (url_hash)"
            " WHERE u.batch = $1 AND u.kind = 'page' AND u.state IN ('stored', 'unchanged')",
            batch,
        )
    return {row["url_hash"] for row in rows}


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.hosts < 1 or args.per_host < 1:
        raise ConfigError("--hosts and --per-host must be at least 1")
    scope = validate_scope(
        Scope(
            mode=args.scope,
            max_depth=args.depth,
            max_pages_per_host=args.max_pages_per_host,
            max_pages=args.max_pages,
        )
    )
    _check_overrides(settings)
    paths = StackPaths.at(settings.stack.data_dir)
    paths.ensure()
    web = DemoWebServer(stack=settings.stack, paths=paths)
    web.ensure_running()
    # Timeouts of the demo's slow pages sit just above the ingestor's total timeout.
    listed = _listed(args, web.port, settings.ingestor.total_timeout_s + 5)
    # The stack's demo web runs with the default DemoWebConfig (workers/stack/demoweb.py).
    expectation = expect_crawl(
        listed,
        scope,
        sitemaps=args.sitemaps,
        config=DemoWebConfig(),
        fetch_timeout_s=settings.ingestor.total_timeout_s,
    )
    sys.stderr.write(
        f"demo web on {web.address()}; crawling {len(listed)} listed URLs over {args.hosts} sites, "
        f"depth {scope.max_depth}, scope {scope.mode}; a correct crawl requests {expectation.requested} "
        f"URLs and stores {expectation.expected} pages{'' if expectation.exact else ' at most'}\n"
    )
    batch = new_batch_id("demo")
    view = ProgressView(total=len(listed))
    try:
        progress, stored = asyncio.run(
            publish_and_wait(
                settings,
                listed,
                scope=scope,
                batch=batch,
                sitemaps=args.sitemaps,
                timeout_s=args.timeout,
                view=view,
            )
        )
    finally:
        view.close()
    report = demo_report(expectation, stored, progress, batch=batch)
    for line in report.explain():
        sys.stderr.write(line + "\n")
    sys.stderr.write(
        "see dead letters with `streamcrawl dlq`, export pages with `streamcrawl export -o pages.jsonl`\n"
    )
    if args.json:
        sys.stdout.write(json.dumps(report.to_json()) + "\n")
    else:
        sys.stdout.write(
            f"demo: expected {report.expected}, stored {report.stored}, dead-lettered {report.dead_lettered}, "
            f"skipped {sum(report.skipped.values())}, unexpected {report.unexpected}, "
            f"missing {report.missing}, lost {report.lost}\n"
        )
    return 0 if report.ok else 1
