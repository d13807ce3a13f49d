"""Tranco top-sites lists: parse, validate, normalise, fetch and store a snapshot.

A snapshot is a ``rank,domain`` list (Tranco's CSV, plain or zipped). Each line is
validated: a positive integer rank and a bare host name (lower-cased, trailing dot
dropped, IDN turned into punycode, LDH labels, a non-numeric TLD). Invalid lines,
duplicate ranks and duplicate domains are dropped and counted with the reason.
Rows are stored with COPY in ``tranco_lists`` (see crawl_assets/schema.py).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from workers.errors import ConfigError

__all__ = [
    "ParsedTranco",
    "download_tranco",
    "normalize_domain",
    "parse_tranco_lines",
    "read_tranco_file",
    "snapshot_id_for_file",
    "store_snapshot",
]

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_DATE_IN_NAME = re.compile(r"(\d{4}-\d{2}-\d{2})")


@dataclass(slots=True)
class ParsedTranco:
    rows: list[tuple[int, str]] = field(default_factory=list)
    """(rank, domain), in file order."""
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    """(line number, line, reason) of each dropped line."""


def normalize_domain(raw: str) -> str:
    """The canonical host name of a list entry; ValueError says why it is not one."""
    text = raw.strip().rstrip(".").lower()
    if not text:
        raise ValueError("empty domain")
    if any(c in text for c in "/:@ \t?#"):
        raise ValueError("not a bare domain")
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid internationalised domain: {exc}") from None
    if len(text) > 253:
        raise ValueError("domain longer than 253 characters")
    labels = text.split(".")
    if len(labels) < 2:
        raise ValueError("no top-level domain")
    for label in labels:
        if not _LABEL.match(label):
            raise ValueError(f"invalid label {label!r}")
    if labels[-1].isdigit():
        raise ValueError("an IP address or a numeric top-level domain")
    return text


def parse_tranco_lines(lines: Iterable[str]) -> ParsedTranco:
    """Parse ``rank,domain`` lines; blank lines and ``#`` comments are ignored."""
    out = ParsedTranco()
    ranks: set[int] = set()
    domains: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        first, sep, rest = line.partition(",")
        if not sep or not first.strip().isdigit() or int(first) < 1:
            out.rejected.append((number, line, "expected `rank,domain` with a positive rank"))
            continue
        rank = int(first)
        try:
            domain = normalize_domain(rest)
        except ValueError as exc:
            out.rejected.append((number, line, str(exc)))
            continue
        if rank in ranks:
            out.rejected.append((number, line, "duplicate rank"))
        elif domain in domains:
            out.rejected.append((number, line, "duplicate domain"))
        else:
            ranks.add(rank)
            domains.add(domain)
            out.rows.append((rank, domain))
    return out


def read_tranco_file(path: Path) -> ParsedTranco:
    """A Tranco CSV, or a ZIP holding one (Tranco's download format)."""
    if not path.is_file():
        raise ConfigError(f"Tranco list not found: {path}")
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            members = [n for n in archive.namelist() if n.lower().endswith(".csv")]
            if not members:
                raise ConfigError(f"{path}: the ZIP holds no .csv file")
            with archive.open(members[0]) as raw:
                return parse_tranco_lines(io.TextIOWrapper(raw, encoding="utf-8", errors="replace"))
    with path.open(encoding="utf-8", errors="replace") as handle:
        return parse_tranco_lines(handle)


def snapshot_id_for_file(path: Path) -> str:
    """A snapshot id for a local file: the date in its name, else its modification date."""
    match = _DATE_IN_NAME.search(path.name)
    if match:
        return match.group(1)
    return datetime.fromtimestamp(path.stat().st_mtime, tz=UTC).date().isoformat()


def download_tranco(list_id: str) -> ParsedTranco:
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
    return parse_tranco_lines(f"{rank},{domain}" for rank, domain in enumerate(domains, start=1))


async def store_snapshot(
    conn: asyncpg.Connection, *, list_id: str, source: str, parsed: ParsedTranco
) -> None:
    """Replace snapshot ``list_id`` with ``parsed`` rows in one transaction (COPY)."""
    async with conn.transaction():
        await conn.execute("DELETE FROM tranco_lists WHERE list_id = $1", list_id)
        await conn.copy_records_to_table(
            "tranco_lists",
            records=[(list_id, rank, domain) for rank, domain in parsed.rows],
            columns=["list_id", "rank", "domain"],
        )
        await conn.execute(
            "INSERT INTO tranco_snapshots (list_id, source, row_count, rejected_count, loaded_at)"
            " VALUES ($1, $2, $3, $4, now()) ON CONFLICT (list_id) DO UPDATE SET source = $2,"
            " row_count = $3, rejected_count = $4, loaded_at = now()",
            list_id,
            source,
            len(parsed.rows),
            len(parsed.rejected),
        )
