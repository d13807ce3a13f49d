"""The progress line, the ETA in a batch's tail, the end-of-crawl verdict and the CLI's help text."""

from __future__ import annotations

import io
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from workers.api.routes.batches import batch_out
from workers.cli.base import plain_help
from workers.cli.crawl_report import EXIT_DEAD_SHARE, EXIT_NOTHING_STORED, EXIT_TIMEOUT, breakdown, verdict
from workers.cli.main import build_parser
from workers.cli.progress_view import ProgressView, Snapshot, batch_line, plain_line, render_line
from workers.ledger import BatchProgress, Eta, estimate_eta, fetch_budget_s
from workers.settings import IngestorSettings

NOW = datetime(2026, 1, 1, 12, 0, 0, tzinfo=UTC)


def progress(**over: Any) -> BatchProgress:
    fields: dict[str, Any] = {
        "batch": "cli-test",
        "origin": "cli",
        "status": "published",
        "partition_key": None,
        "scope": None,
        "created_at": NOW - timedelta(seconds=60),
        "published_at": NOW - timedelta(seconds=60),
        "completed_at": None,
        "first_outcome_at": NOW - timedelta(seconds=59),
        "last_outcome_at": NOW - timedelta(seconds=1),
        "requested": 1000,
        "listed": 1000,
        "discovered": 0,
        "fetched": 700,
        "stored": 690,
        "unchanged": 0,
        "skipped": 12,
        "dead_lettered": 10,
        "fast": 690,
        "rich": 0,
        "aux_requested": 0,
        "aux_finished": 0,
    }
    fields.update(over)
    return BatchProgress(**fields)


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_bar_count_rate_and_eta_stay_visible_at_every_width(width: int) -> None:
    snap = Snapshot(progress(), 41.25, Eta(7.0))
    line = render_line(snap, width)
    assert len(line) <= width - 1
    assert "━" in line and "712/1000" in line and "41.2 pages/s" in line and "ETA 7s" in line
    if width >= 200:
        assert "dead-lettered 10" in line and "in flight 288" in line and line.startswith("crawl ")


def test_the_tail_fits_at_80_columns() -> None:
    tail = progress(stored=985)
    for eta in (Eta(None, bound=100.0, last=3), Eta(None, last=3)):
        line = render_line(Snapshot(tail, 0.3, eta), 80)
        assert len(line) <= 79 and eta.describe() in line and "━" in line, line


def test_eta_is_rate_based_while_many_urls_are_left() -> None:
    p = progress()
    assert estimate_eta(p, rate=40.0, now=NOW.timestamp()) == Eta(288 / 40.0)
    assert estimate_eta(p, rate=0.0, now=NOW.timestamp()) == Eta(None)
    done = progress(stored=978, completed_at=NOW)
    assert estimate_eta(done, rate=40.0, now=NOW.timestamp()) == Eta(0.0)
    # Many URLs left and nothing finishing for 20 s: the pipeline stalled, no honest number.
    stalled = progress(last_outcome_at=NOW - timedelta(seconds=20))
    assert estimate_eta(stalled, rate=40.0, budget_s=123.5, now=NOW.timestamp()).describe() == "ETA ?"


def test_the_tail_shows_the_urls_left_and_the_bound_never_the_rates_zero() -> None:
    t = NOW.timestamp()
    # 5 URLs left, the bulk's rate (40/s) would say 0.1 s: the tail says what is known.
    tail = progress(stored=973, last_outcome_at=NOW - timedelta(seconds=1))
    assert tail.in_flight == 5
    eta = estimate_eta(tail, rate=40.0, budget_s=35.5, now=t, tail_since=t - 10)
    assert eta == Eta(None, bound=25.5, last=5)
    assert eta.describe() == "finishing the last 5 URLs, ≤ 26s"
    assert estimate_eta(tail, rate=40.0, now=t).describe() == "finishing the last 5 URLs"
    overdue = estimate_eta(tail, rate=40.0, budget_s=35.5, now=t, tail_since=t - 40)
    assert overdue.describe() == "finishing the last 5 URLs"  # past the bound: no number
    one = progress(stored=977, last_outcome_at=NOW - timedelta(seconds=5))
    assert estimate_eta(one, rate=1.0, budget_s=35.5, now=t, tail_since=t - 9).describe() == (
        "finishing the last 1 URL, ≤ 27s"
    )


def test_fetch_budget_counts_every_attempt_and_retry_delay() -> None:
    s = IngestorSettings(total_timeout_s=8, max_retries=3, retry_max_delay_s=10, retry_after_cap_s=30)
    assert fetch_budget_s(s) == 4 * 8 + 3 * 30


def test_pages_per_second_counts_stored_pages_only_and_recoveries_are_shown() -> None:
    out = io.StringIO()
    view = ProgressView(total=1000, stream=out, tty=False, plain_every_s=0)
    view.snapshot(progress(stored=0, dead_lettered=100), now=0.0)
    snap = view.snapshot(progress(stored=0, dead_lettered=300), now=10.0)
    assert snap.pages_per_s == 0.0  # 200 dead letters in 10 s are not pages
    snap = view.snapshot(progress(stored=50, dead_lettered=290), now=20.0)
    assert snap.pages_per_s == pytest.approx(50 / 20)
    assert snap.recovered == 10 and "dead-lettered 290 (10 recovered)" in plain_line(snap)


def test_plain_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    view = ProgressView(total=1000, stream=out, tty=False, plain_every_s=3600)
    view.update(progress())
    view.update(progress(stored=691))  # within plain_every_s: not printed
    view.update(progress(stored=978, completed_at=NOW))
    view.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[712/1000] stored 690") and "\r" not in out.getvalue()
    assert lines[1].startswith("[1000/1000]") and lines[1].endswith("ETA 0s")


def test_verdicts() -> None:
    assert verdict(progress(stored=978, completed_at=NOW), max_dead_share=0.5).code == 0
    assert verdict(progress(), max_dead_share=0.5, timeout_s=30).code == EXIT_TIMEOUT
    dead = progress(stored=0, skipped=0, dead_lettered=1000, completed_at=NOW)
    nothing = verdict(dead, max_dead_share=0.5)
    assert nothing.code == EXIT_NOTHING_STORED and "1000 of 1000 URLs dead-lettered" in (nothing.reason or "")
    mostly = progress(stored=300, skipped=0, dead_lettered=700, completed_at=NOW)
    assert verdict(mostly, max_dead_share=0.5).code == EXIT_DEAD_SHARE
    assert verdict(mostly, max_dead_share=0.8).code == 0
    already = progress(
        stored=0, skipped=1000, dead_lettered=0, skipped_by_reason={"already_stored": 1000}, completed_at=NOW
    )
    assert verdict(already, max_dead_share=0.5).code == 0


def test_breakdown_has_one_example_per_reason() -> None:
    p = progress(
        skipped_by_reason={"robots": 10, "already_stored": 2},
        dead_by_reason={"PermanentFetchError": 7, "TransientFetchError": 3},
        dropped_by_reason={"out_of_scope": 40},
        examples={
            "skipped:robots": "http://a.example/private",
            "dead:PermanentFetchError": "http://a.example/404",
            "dead:TransientFetchError": "http://a.example/slow",
        },
    )
    lines = breakdown(p)
    assert lines[0] == "skipped by reason:"
    assert lines[1].split() == ["robots", "10", "e.g.", "http://a.example/private"]
    assert lines[2].split() == ["already_stored", "2"]
    assert lines[3] == "dead-lettered by error class:"
    assert lines[4].split() == ["PermanentFetchError", "7", "e.g.", "http://a.example/404"]
    assert "links not followed, by reason:" in lines and lines[-1].split() == ["out_of_scope", "40"]


def test_help_texts_carry_no_docstring_markup() -> None:
    assert plain_help("publishes to ``crawl.request`` via :func:`workers.dlq.replay`") == (
        "publishes to `crawl.request` via `workers.dlq.replay`"
    )
    parser = build_parser()
    texts = [parser.format_help()]
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    texts += [p.format_help() for p in sub.choices.values()]  # type: ignore[union-attr]
    assert len(texts) > 5 and not [t for t in texts if "``" in t or ":func:" in t]


_PIPE_SCRIPT = """
import argparse, sys
from workers.cli import main as cli

def big(args, settings):
    for _ in range(5000):
        sys.stdout.write("x" * 1000 + "\\n")
    return 0

def build():
    parser = argparse.ArgumentParser()
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.set_defaults(handler=big, command="big")
    return parser

cli.build_parser = build
sys.exit(cli.main([]))
"""


def test_a_closed_pipe_ends_quietly() -> None:
    with subprocess.Popen(
        [sys.executable, "-c", _PIPE_SCRIPT], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.read(10)
        proc.stdout.close()  # the reader goes away, like `| head -c 10`
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert err == "" and code == 141, err


def test_the_api_shows_the_eta_status_shows() -> None:
    now = datetime.now(UTC)
    times = {
        "created_at": now - timedelta(seconds=60),
        "published_at": now - timedelta(seconds=60),
        "first_outcome_at": now - timedelta(seconds=59),
    }
    # The tail: 5 URLs left, the last outcome 2 s ago; no rate number, the bound from the budget.
    tail = progress(stored=973, last_outcome_at=now - timedelta(seconds=2), **times)
    out = batch_out(tail, budget_s=35.5)
    assert out.eta_s is None and out.eta_bound_s is not None and 32.0 <= out.eta_bound_s <= 33.5
    assert out.eta.startswith("finishing the last 5 URLs, ≤ 3")
    assert "finishing the last 5 URLs" in batch_line(tail)
    # The bulk: 288 URLs left at the batch's own rate (712 accounted for in ~60 s).
    bulk = progress(last_outcome_at=now - timedelta(seconds=1), **times)
    out = batch_out(bulk)
    assert out.eta_s is not None and 23.0 <= out.eta_s <= 25.0 and out.eta_bound_s is None
    assert out.eta in {"ETA 24s", "ETA 25s", "ETA 23s"} and "ETA 2" in batch_line(bulk)
    done = batch_out(progress(stored=978, completed_at=now, **times))
    assert done.eta_s == 0.0 and done.eta == "ETA 0s"
