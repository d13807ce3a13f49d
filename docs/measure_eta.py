"""Measure the progress line's ETA against the real time left, on a demo crawl.

    set -a; . <ports env>; set +a   # optional: your port block
    export STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS=true \\
        STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES='{"*.demo.test": "127.0.0.1"}' \\
        STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S=8 STREAMCRAWL_INGESTOR_READ_TIMEOUT_S=4   # as `make run`
    .venv/bin/streamcrawl up
    .venv/bin/python docs/measure_eta.py [--hosts 60] [--per-host 10]

Crawls the same URL mix as `streamcrawl demo` through the running stack and, at every poll,
records what the progress line shows (workers/cli/progress_view.py) next to what the line used
to show (the pages-only rate's ``in_flight / rate``). Once the batch is complete it prints, for
the ticks of the last 30 s, both ETAs beside the time that was really left, and a summary.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
import time

from workers.cli.cmd_crawl import new_batch_id
from workers.cli.progress_view import ProgressView
from workers.demoweb import demo_urls
from workers.ledger import BatchProgress, BatchSpec, RateMeter, fetch_budget_s
from workers.ledger.follow import run_batch
from workers.lists import parse_list_lines
from workers.messages import Scope
from workers.settings import Settings
from workers.stack.demoweb import DemoWebServer
from workers.stack.paths import StackPaths


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--hosts", type=int, default=60)
    parser.add_argument("--per-host", type=int, default=10)
    parser.add_argument("--recrawl", action="store_true", help="fetch stored URLs again (conditionally)")
    args = parser.parse_args()
    settings = Settings.load()
    paths = StackPaths.at(settings.stack.data_dir)
    web = DemoWebServer(stack=settings.stack, paths=paths)
    web.ensure_running()
    delay = settings.ingestor.total_timeout_s + 5
    urls = demo_urls(port=web.port, hosts=args.hosts, per_host=args.per_host, timeout_delay_s=delay)
    entries = parse_list_lines([u.url for u in urls], scheme="http", kind="urls").entries
    view = ProgressView(
        total=len(entries), stream=io.StringIO(), tty=False, budget_s=fetch_budget_s(settings.ingestor)
    )
    old = RateMeter()
    ticks: list[tuple[float, int, float | None, str, float | None]] = []

    def on_tick(p: BatchProgress) -> None:
        now = time.monotonic()
        snap = view.snapshot(p, now=now)
        old.add(p.stored + p.unchanged, now=now)
        shown = snap.eta.bound if snap.eta.last else snap.eta.seconds  # the tail shows its bound
        ticks.append((now, p.in_flight, old.eta_s(p.in_flight), snap.eta.describe(), shown))

    spec = BatchSpec(batch=new_batch_id("eta"), origin="demo", scope=Scope(), recrawl=args.recrawl)
    _result, final = asyncio.run(
        run_batch(settings, spec, entries, wait=True, timeout_s=1800, on_tick=on_tick)
    )
    assert final is not None and final.complete, final and final.summary()
    end = ticks[-1][0]
    print(
        f"batch {final.batch}: {final.requested} URLs in {final.duration_s:.0f} s, fetch budget "
        f"{fetch_budget_s(settings.ingestor):.1f} s per URL"
    )
    print(f"{'left (real)':>11}  {'in flight':>9}  {'old ETA':>8}  new line")
    for t, in_flight, old_eta, new, _ in ticks:
        if end - t <= 30:
            shown = "-" if old_eta is None else f"{old_eta:.1f}s"
            print(f"{end - t:>10.1f}s  {in_flight:>9}  {shown:>8}  {new}")
    tail = [x for x in ticks if 0 < end - x[0] <= 25]
    old_low = sum(1 for _, _, e, _, _ in tail if e is not None and e <= 1.5)
    slow = [x for x in tail if "last" in x[3]]
    under = [end - t - s for t, _, _, _d, s in tail if s is not None and s < end - t]
    print(
        f"last 25 s: {len(tail)} ticks; old ETA <= 1.5 s on {old_low}; new line names the last URLs on "
        f"{len(slow)} (the tail); new estimate or bound below the real time left on {len(under)} ticks"
        + (f" (by {max(under):.1f} s at most)" if under else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
