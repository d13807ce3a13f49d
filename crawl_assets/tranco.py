"""Tranco top-sites lists: read, fetch and store a snapshot.

A snapshot is a ``rank,domain`` list (Tranco's CSV, plain, gzipped or zipped), parsed by
:mod:`workers.lists` — the one list parser, shared with the CLI — with ``kind="ranked"``:
a positive rank used once and a bare domain used once per row; every other line is refused
with its line number and the reason. Rows are stored with COPY in ``tranco_lists`` (see
crawl_assets/schema.py).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from workers.errors import ConfigError
from workers.lists import ParsedList, parse_list_lines, read_list_file

__all__ = ["download_tranco", "read_tranco_file", "snapshot_id_for_file", "store_snapshot"]

_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


def read_tranco_file(path: Path) -> ParsedList:
    """A Tranco list file (CSV, gzip or Tranco's ZIP), every line a `rank,domain` row.

    Parsed by :func:`workers.lists.read_list_file`, the parser the CLI uses, so a line is
    refused for the same reason in both.
    """
    if not path.is_file():
        raise ConfigError(f"Tranco list not found: {path}")
    return read_list_file(path, kind="ranked")


def snapshot_id_for_file(path: Path) -> str:
    """A snapshot id for a local file: the date in its name, else its modification date."""
    match = _DATE_IN_NAME.search(path.name)
    if match:
        return match.group(1)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date().isoformat()


def download_tranco(list_id: str) -> ParsedList:
    """Fetch a list with the ``tranco`` package: ``list_id`` is a list id or a YYYY-MM-DD date.

    Needs the package and internet access; raises ConfigError saying so otherwise.
    """
    try:
        import tranco  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise ConfigError(
            "downloading a Tranco list needs the `tranco` package (pip install tranco) and "
            "internet access; or set config `path` to a local Tranco CSV/ZIP"
        ) from None
    try:
        client = tranco.Tranco(cache=False)
        is_date = bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", list_id))
        ranked = client.list(date=list_id) if is_date else client.list(list_id=list_id)
        domains: list[str] = list(ranked.top(1_000_000))
    except Exception as exc:  # any network or library failure becomes one clear error
        raise ConfigError(
            f"could not download Tranco list {list_id!r} ({type(exc).__name__}: {exc}); is the "
            "machine offline? Set config `path` to a local Tranco CSV/ZIP instead"
        ) from exc
    lines = (f"{rank},{domain}" for rank, domain in enumerate(domains, start=1))
    return parse_list_lines(lines, kind="ranked")


async def store_snapshot(conn: asyncpg.Connection, *, list_id: str, source: str, parsed: ParsedList) -> None:
    """Replace snapshot ``list_id`` with ``parsed`` rows in one transaction (COPY)."""
    async with conn.transaction():
        await conn.execute("DELETE FROM tranco_lists WHERE list_id = $1", list_id)
        await conn.copy_records_to_table(
            "tranco_lists",
            records=[(list_id, rank, domain) for rank, domain in parsed.ranked],
            columns=["list_id", "rank", "domain"],
        )
        await conn.execute(
            "INSERT INTO tranco_snapshots (list_id, source, row_count, rejected_count, loaded_at)"
            " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (list_id) DO UPDATE SET source = $2,"
            " row_count = $3, rejected_count = $4, loaded_at = now()",
            list_id,
            source,
            len(parsed.entries),
            len(parsed.rejected),
        )
