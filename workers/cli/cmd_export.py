"""`streamcrawl export [--format jsonl|parquet|warc] [--batch B] [--dedup] [-o PATH]`: the stored corpus.

* ``jsonl`` (default; stdout unless ``-o``): one object per page — url, final_url, url_hash,
  title, description, lang (declared), language and language_score (detected), fetch_status,
  content_type, charset, route, score, fetched_at (ISO 8601), duplicate_of, batch, text,
  markdown.
* ``parquet`` (needs ``-o``): Common Crawl's columnar-index columns plus title, text, markdown,
  language_score, simhash, duplicate_of, route, score (workers/storage/parquet.py lists them).
  ``duckdb -c "SELECT content_languages, count(*) FROM 'corpus.parquet' GROUP BY 1"``
* ``warc`` (needs ``-o``): every page's records (request, response, metadata, conversions),
  gzipped per record, after one ``warcinfo`` record: a ``.warc.gz`` file any WARC tool reads.

``--dedup`` leaves out pages flagged as exact or near duplicates of an earlier page.
A progress bar on stderr when it is a terminal (plain lines every 5 s otherwise).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import IO, Any

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from workers.cli.base import Subparsers
from workers.errors import ConfigError, DependencyUnavailable
from workers.settings import Settings
from workers.storage import CorpusRow, PageStore
from workers.storage.export import warc_bytes
from workers.storage.parquet import write_parquet
from workers.storage.warc import warcinfo_record

__all__ = ["FORMATS", "export", "register", "run", "storage_unreachable"]

FORMATS = ("jsonl", "parquet", "warc")
_PARTS = {
    "jsonl": ("text", "markdown"),
    "parquet": ("text", "markdown"),
    "warc": ("warc", "html", "markdown"),
}


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write stored pages as JSON Lines, Parquet or WARC",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--format", choices=FORMATS, default="jsonl", help="output format (default: jsonl)")
    parser.add_argument("-o", "--output", help="output file (default for jsonl: stdout)")
    parser.add_argument("--batch", help="only pages of this crawl batch")
    parser.add_argument("--dedup", action="store_true", help="leave out pages flagged as duplicates")
    parser.set_defaults(handler=run)


class _Progress:
    """A bar on a terminal, a line every few seconds otherwise; silent for tiny exports."""

    def __init__(self, total: int, *, what: str, every_s: float = 5.0) -> None:
        self.total, self.done, self._what, self._every = total, 0, what, every_s
        self._last = time.monotonic()
        self._bar: Progress | None = None
        if sys.stderr.isatty() and total > 0:
            self._bar = Progress(
                TextColumn(f"[bold]export {what}[/bold]"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeRemainingColumn(),
                transient=True,
            )
            self._task = self._bar.add_task("", total=total)
            self._bar.start()

    def step(self, _row: CorpusRow | None = None) -> None:
        self.done += 1
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done)
        elif time.monotonic() - self._last >= self._every:
            self._last = time.monotonic()
            sys.stderr.write(f"export {self._what}: {self.done}/{self.total} pages\n")
            sys.stderr.flush()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()


async def _counted(rows: AsyncIterator[CorpusRow], progress: _Progress) -> AsyncIterator[CorpusRow]:
    async for row in rows:
        yield row
        progress.step()


async def export(
    settings: Settings,
    *,
    fmt: str,
    out: IO[str] | IO[bytes] | Path,
    batch: str | None = None,
    dedup: bool = False,
) -> int:
    """Write the selected pages; returns how many. ``out`` is a text stream (jsonl), a binary
    stream (warc) or a path (any format)."""
    async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
        total = await store.count_corpus(batch=batch, dedup=dedup)
        if batch is not None and total == 0 and await store.count_pages(batch=batch) == 0:
            raise ConfigError(
                f"no stored pages in batch {batch!r}: check the id (`streamcrawl status` shows recent batches)"
            )
        progress = _Progress(total, what=fmt)
        # aclosing: a failure while writing (a closed pipe, a full disk) must end the row
        # stream, or its open cursor keeps a connection and closing the pool waits forever.
        source = store.iter_corpus(batch=batch, dedup=dedup, parts=_PARTS[fmt])
        try:
            async with contextlib.aclosing(source):
                return await _write(fmt, _counted(source, progress), out)
        finally:
            progress.close()


async def _write(fmt: str, rows: AsyncIterator[CorpusRow], out: IO[str] | IO[bytes] | Path) -> int:
    if fmt == "parquet":
        assert isinstance(out, Path)
        return await write_parquet(rows, out)
    with _open(out, binary=fmt == "warc") as handle:
        count = 0
        if fmt == "warc":
            name = out.name if isinstance(out, Path) else "export.warc.gz"
            handle.write(warcinfo_record(now=time.time(), filename=name))
        async for row in rows:
            if fmt == "warc":
                handle.write(warc_bytes(row))
            else:
                handle.write(json.dumps(row.as_json(), ensure_ascii=False) + "\n")
            count += 1
        return count


@contextlib.contextmanager
def _open(out: IO[str] | IO[bytes] | Path, *, binary: bool) -> Iterator[IO[Any]]:
    if not isinstance(out, Path):
        yield out
    elif binary:
        with out.open("wb") as handle:
            yield handle
    else:
        with out.open("w", encoding="utf-8") as handle:
            yield handle


def _check_output(path: Path) -> None:
    """One-line errors for an output path that cannot work, before anything is read."""
    if path.is_dir():
        raise ConfigError(f"cannot write {path}: it is a directory; give a file name with -o")
    parent = path.parent
    if not parent.is_dir():
        raise ConfigError(
            f"cannot write {path}: directory {parent} does not exist; create it or choose another -o"
        )
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise ConfigError(f"cannot write {path}: permission denied; choose a writable path with -o")


def storage_unreachable(exc: DependencyUnavailable, settings: Settings) -> ConfigError:
    """The one-line error when PostgreSQL or S3 does not answer: where, and how to start them."""
    pg = settings.postgres
    return ConfigError(
        f"{exc} — is the stack up? Start it with `streamcrawl up` (PostgreSQL at {pg.host}:{pg.port}, "
        f"S3 at {settings.s3.endpoint})"
    )


def run(args: argparse.Namespace, settings: Settings) -> int:
    fmt: str = args.format
    if args.output is None and fmt != "jsonl":
        raise ConfigError(f"--format {fmt} writes a binary file: give its path with -o, e.g. -o corpus.{fmt}")
    out: IO[str] | Path = sys.stdout if args.output in (None, "-") else Path(args.output)
    if isinstance(out, Path):
        _check_output(out)
    try:
        count = asyncio.run(export(settings, fmt=fmt, out=out, batch=args.batch, dedup=args.dedup))
    except DependencyUnavailable as exc:
        raise storage_unreachable(exc, settings) from None
    except BrokenPipeError:
        # `| head`: the reader went away; not an error worth a traceback. Point stdout at
        # /dev/null so the interpreter's final flush does not fail again (Python's docs' recipe).
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}; choose another path with -o") from None
    where = f" to {out}" if isinstance(out, Path) else ""
    sys.stderr.write(f"exported {count} pages{where}\n")
    return 0
