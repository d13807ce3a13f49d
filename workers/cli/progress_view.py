"""The live progress line of `crawl --wait` (stderr; a bar on a terminal, plain lines otherwise)."""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from workers.ledger import BatchProgress, RateMeter

__all__ = ["ProgressView"]


def _line(p: BatchProgress, rate: float) -> str:
    return (
        f"requested {p.requested} ({p.discovered} discovered) · stored {p.stored} · "
        f"skipped {p.skipped} · dead-lettered {p.dead_lettered} · in flight {p.in_flight} · "
        f"{rate:.1f} pages/s"
    )


class ProgressView:
    def __init__(self, *, total: int, plain_every_s: float = 5.0) -> None:
        self.total = total
        self._tty = sys.stderr.isatty()
        self._plain_every_s = plain_every_s
        self._last_plain = 0.0
        self._meter = RateMeter()
        self._progress: Progress | None = None
        if self._tty:
            self._progress = Progress(
                TextColumn("[bold]crawl[/bold]"),
                BarColumn(),
                TextColumn("{task.completed}/{task.total}"),
                TextColumn("{task.description}"),
                TimeRemainingColumn(),
                transient=False,
            )
            self._task = self._progress.add_task("", total=total)
            self._progress.start()

    def update(self, progress: BatchProgress) -> None:
        self._meter.add(progress.stored + progress.unchanged)
        rate = self._meter.rate()
        if self._progress is not None:
            self._progress.update(
                self._task,
                completed=progress.accounted,
                total=max(progress.requested, 1),
                description=_line(progress, rate),
            )
            return
        now = time.monotonic()
        if now - self._last_plain >= self._plain_every_s or progress.complete:
            self._last_plain = now
            eta = self._meter.eta_s(progress.in_flight)
            sys.stderr.write(
                f"[{progress.accounted}/{progress.requested}] {_line(progress, rate)}"
                + (f" · ETA {eta:.0f}s" if eta is not None and not progress.complete else "")
                + "\n"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
