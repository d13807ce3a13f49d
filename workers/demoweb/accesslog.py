"""The demo server's access log: every request, one file per server process, merged on read.

With ``DemoWebConfig.access_log_dir`` (``--access-log-dir``) each server process appends one
tab-separated line per request to ``<dir>/access-<pid>-<start>.tsv``::

    start epoch s   duration s   pid   method   Host header   path+query (raw)   status   User-Agent

Lines are buffered and written every :data:`FLUSH_INTERVAL_S` (and at shutdown), so logging
costs ~4 µs of CPU a request (measured; the server spends >100 µs on one) and can stay on in tests; a reader sees a request at most
that long after it finished. A request the client abandoned (e.g. a timed-out stall) is logged
with the status it was being answered with when it ended (499 if it never got one).

Reading::

    log = read_access_log(directory)                    # every process, ordered by start time
    log = await wait_for_records(directory, at_least=n)  # poll until n requests are logged
    counts = fetch_counts(log, user_agent="StreamCrawl") # canonical URL -> requests
    assert not {u for u, n in counts.items() if n > 1}  # nothing fetched twice
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final

from workers.urls import InvalidURL, canonicalize

__all__ = [
    "FLUSH_INTERVAL_S",
    "AccessLogWriter",
    "AccessRecord",
    "fetch_counts",
    "read_access_log",
    "wait_for_records",
]

FLUSH_INTERVAL_S: Final = 0.2
_FIELDS: Final = 8
_CLEAN: Final = str.maketrans({"\t": " ", "\n": " ", "\r": " "})


@dataclass(frozen=True, slots=True)
class AccessRecord:
    time: float
    """When the request arrived (epoch seconds)."""
    duration_s: float
    pid: int
    method: str
    host: str
    """The Host header as sent (lower-cased, port included)."""
    target: str
    """Path and query as sent (still percent-encoded)."""
    status: int
    user_agent: str

    @property
    def url(self) -> str:
        return f"http://{self.host}{self.target}"

    @property
    def canonical_url(self) -> str | None:
        """The URL as the crawler identifies it (workers.urls.canonicalize), None if invalid."""
        try:
            return canonicalize(self.url)
        except InvalidURL:
            return None


class AccessLogWriter:
    """Buffers access lines of one server process and writes them in the background."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / f"access-{os.getpid()}-{time.time_ns()}.tsv"
        self._file: IO[str] | None = self.path.open("a", encoding="utf-8", buffering=1 << 16)
        self._dirty = False
        self._task: asyncio.Task[None] | None = None

    def record(
        self, *, start: float, method: str, host: str, target: str, status: int, user_agent: str
    ) -> None:
        if self._file is None:
            return
        line = (
            f"{start:.6f}\t{time.time() - start:.6f}\t{os.getpid()}\t{method}\t{host.translate(_CLEAN)}\t"
            f"{target.translate(_CLEAN)}\t{status}\t{user_agent.translate(_CLEAN)}\n"
        )
        self._file.write(line)
        self._dirty = True

    def flush(self) -> None:
        if self._file is not None and self._dirty:
            self._file.flush()
            self._dirty = False

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_INTERVAL_S)
            self.flush()

    def start(self) -> None:
        """Start the periodic flush in the running loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._flush_loop())

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _parse(line: str) -> AccessRecord | None:
    parts = line.rstrip("\n").split("\t")
    if len(parts) != _FIELDS or not line.endswith("\n"):
        return None  # a line cut short by a killed process
    try:
        return AccessRecord(
            time=float(parts[0]),
            duration_s=float(parts[1]),
            pid=int(parts[2]),
            method=parts[3],
            host=parts[4],
            target=parts[5],
            status=int(parts[6]),
            user_agent=parts[7],
        )
    except ValueError:
        return None


def read_access_log(directory: Path | str, *, since: float | None = None) -> list[AccessRecord]:
    """Every request logged under ``directory`` (all processes), ordered by arrival time."""
    records: list[AccessRecord] = []
    for path in sorted(Path(directory).glob("access-*.tsv")):
        with path.open(encoding="utf-8", errors="replace") as file:
            for line in file:
                record = _parse(line)
                if record is not None and (since is None or record.time >= since):
                    records.append(record)
    records.sort(key=lambda r: r.time)
    return records


async def wait_for_records(
    directory: Path | str, *, at_least: int, timeout_s: float = 10.0, since: float | None = None
) -> list[AccessRecord]:
    """:func:`read_access_log` once it holds ``at_least`` records, or whatever it holds after ``timeout_s``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    records = read_access_log(directory, since=since)
    while len(records) < at_least and loop.time() < deadline:
        await asyncio.sleep(FLUSH_INTERVAL_S / 4)
        records = read_access_log(directory, since=since)
    return records


def fetch_counts(
    records: Iterable[AccessRecord], *, user_agent: str | None = None, method: str = "GET"
) -> Counter[str]:
    """Requests per canonical URL; only those whose User-Agent starts with ``user_agent`` if given."""
    counts: Counter[str] = Counter()
    for record in records:
        if record.method != method or (
            user_agent is not None and not record.user_agent.startswith(user_agent)
        ):
            continue
        url = record.canonical_url
        if url is not None:
            counts[url] += 1
    return counts
