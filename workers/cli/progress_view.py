"""The live progress line of `crawl --wait` and `demo`, on stderr.

On a terminal: one line redrawn in place, fitted to the terminal's width each time (read
again on every update, so a resize is followed). The bar, the ``done/requested`` count, the
pages/s and the ETA always stay; the per-outcome counts are shortened, then dropped, as the
width shrinks (at 80 columns everything but the full counts fits). Not a terminal (piped,
redirected, CI): a plain line every ``plain_every_s`` seconds and one at the end.

Numbers, all from the one progress model (:mod:`workers.ledger.progress`):

* pages/s counts **stored and unchanged pages only**, over the last 30 s;
* the ETA is :func:`workers.ledger.estimate_eta` at the rate URLs are accounted for (any final
  state) over the last 30 s; in the batch's tail it carries a bound — the ingestor's fetch
  budget (:func:`workers.ledger.fetch_budget_s`) from when the tail began — and once outcomes stop arriving,
  only that bound (``finishing the last 3 URLs, ≤ 25s``), never a rate-based 0-1 s;
* the dead-lettered count is the current one: a URL stored after a replay leaves it, and the
  line says how many were recovered that way.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from typing import TextIO

from workers.ledger import BatchProgress, RateMeter
from workers.ledger.progress import Eta, tail_size

__all__ = ["ProgressView", "Snapshot", "batch_line", "plain_line", "render_line"]

_MIN_BAR = 10
_MAX_BAR = 40


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What one update shows."""

    progress: BatchProgress
    pages_per_s: float
    eta: Eta
    recovered: int = 0
    """URLs that left dead-lettered for stored since the view started (replays)."""


def _counts(s: Snapshot) -> str:
    p = s.progress
    dead = f"dead-lettered {p.dead_lettered}" + (f" ({s.recovered} recovered)" if s.recovered else "")
    discovered = f" ({p.discovered} discovered)" if p.discovered else ""
    return (
        f"stored {p.stored} · unchanged {p.unchanged} · skipped {p.skipped} · {dead} · "
        f"in flight {p.in_flight}{discovered}"
    )


def _compact(s: Snapshot) -> str:
    p = s.progress
    return f"stored {p.stored} · skip {p.skipped} · dead {p.dead_lettered}"


def _bar(done: int, total: int, width: int) -> str:
    filled = width * min(done, total) // total if total else 0
    return "━" * filled + ("╺" if filled < width else "") + "─" * max(0, width - filled - 1)


def render_line(s: Snapshot, width: int) -> str:
    """The progress line fitted to ``width`` columns (see the module doc for what gives way)."""
    p = s.progress
    total = max(p.requested, 1)
    head = f"{p.accounted}/{p.requested}"
    essential = f"{s.pages_per_s:.1f} pages/s · {s.eta.describe()}"
    room = width - 1  # never write into the last column: some terminals wrap there
    for counts, min_bar in ((_counts(s), 2 * _MIN_BAR), (_compact(s), _MIN_BAR), ("", _MIN_BAR)):
        for label in ("crawl ", ""):
            tail = f" {head} · {essential}" + (f" · {counts}" if counts else "")
            bar = min(_MAX_BAR, room - len(label) - len(tail))
            if bar >= min_bar:
                return f"{label}{_bar(p.accounted, total, bar)}{tail}"
    return f"{head} · {essential}"[:room]


def plain_line(s: Snapshot) -> str:
    """The periodic line when stderr is not a terminal."""
    p = s.progress
    return f"[{p.accounted}/{p.requested}] {_counts(s)} · {s.pages_per_s:.1f} pages/s · {s.eta.describe()}"


def batch_line(p: BatchProgress) -> str:
    """One batch in `streamcrawl status`: its state and the counts of the progress line.

    Rates and the ETA are over the batch's whole duration (status reads the ledger once).
    """
    duration = f" · {p.duration_s:.0f} s" if p.duration_s is not None else ""
    if p.complete:
        snap = Snapshot(p, p.pages_per_s, Eta(0.0))
        return f"{p.batch}  complete  [{p.accounted}/{p.requested}] {_counts(snap)} · {p.pages_per_s:.1f} pages/s{duration}"
    state = "running" if p.published else "publishing"
    return f"{p.batch}  {state}  {plain_line(Snapshot(p, p.pages_per_s, p.eta()))}{duration}"


class ProgressView:
    """Shows :class:`BatchProgress` updates; ``update`` is the ``on_tick`` of ``follow_batch``."""

    def __init__(
        self,
        *,
        total: int,
        stream: TextIO | None = None,
        tty: bool | None = None,
        plain_every_s: float = 5.0,
        budget_s: float | None = None,
    ) -> None:
        self.total = total
        self._out = stream or sys.stderr
        self._tty = self._out.isatty() if tty is None else tty
        self._plain_every_s = plain_every_s
        self._budget_s = budget_s
        self._last_plain: float | None = None  # the first update prints (monotonic time may be small)
        self._pages = RateMeter()
        self._finished = RateMeter()
        self._last_dead: int | None = None
        self._recovered = 0
        self._tail_since: float | None = None
        self._drawn = False

    def _width(self) -> int:
        try:
            return os.get_terminal_size(self._out.fileno()).columns
        except (OSError, ValueError, AttributeError):
            return 80

    def snapshot(self, progress: BatchProgress, *, now: float | None = None) -> Snapshot:
        t = time.monotonic() if now is None else now
        self._pages.add(progress.stored + progress.unchanged, now=t)
        self._finished.add(progress.accounted, now=t)
        if self._last_dead is not None and progress.dead_lettered < self._last_dead:
            self._recovered += self._last_dead - progress.dead_lettered
        self._last_dead = progress.dead_lettered
        if progress.in_flight > tail_size(progress):
            self._tail_since = None
        elif self._tail_since is None:
            self._tail_since = time.time()  # wall clock, as the ledger's timestamps
        eta = progress.eta(rate=self._finished.rate(), budget_s=self._budget_s, tail_since=self._tail_since)
        return Snapshot(progress, self._pages.rate(), eta, self._recovered)

    def update(self, progress: BatchProgress) -> None:
        snap = self.snapshot(progress)
        if self._tty:
            self._out.write("\r" + render_line(snap, self._width()) + "\x1b[K")
            self._out.flush()
            self._drawn = True
            return
        now = time.monotonic()
        last = self._last_plain
        if last is None or now - last >= self._plain_every_s or progress.complete:
            self._last_plain = now
            self._out.write(plain_line(snap) + "\n")
            self._out.flush()

    def close(self) -> None:
        if self._drawn:
            self._out.write("\n")
            self._out.flush()
            self._drawn = False
