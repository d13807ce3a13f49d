"""The live progress line of `crawl --wait` (stderr; a bar on a terminal, plain lines otherwise)."""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from workers.progress import BatchProgress

__all__ = ["ProgressView"]


def _line(p: BatchProgress) -> str:
    c = p.counts()
    return (
        f"fetched {c['fetched']} · fast {c['fast']} · rich {c['rich']} · processed {c['processed']} · "
        f"stored {c['stored']} · dead-lettered {c['dead_lettered']} · {p.rate():.1f} pages/s"
    )


class ProgressView:
    def __init__(self, *, total: int, plain_every_s: float = 5.0) -> None:
        self.total = total
        self._tty = sys.stderr.isatty()
        self._plain_every_s = plain_every_s
        self._last_plain = 0.0
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
        if self._progress is not None:
            self._progress.update(self._task, completed=progress.accounted, description=_line(progress))
            return
        now = time.monotonic()
        if now - self._last_plain >= self._plain_every_s or progress.done:
            self._last_plain = now
            eta = progress.eta_s()
            sys.stderr.write(
                f"[{progress.accounted}/{self.total}] {_line(progress)}"
                + (f" · ETA {eta:.0f}s" if eta is not None and not progress.done else "")
                + "\n"
            )
            sys.stderr.flush()

    def close(self) -> None:
        if self._progress is not None:
            self._progress.stop()
