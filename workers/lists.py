"""List input: Tranco CSVs (plain, gzip or ZIP) and URL lists, parsed one way everywhere.

`streamcrawl crawl`, Dagster's ``tranco_list`` asset and the API read lists through
:func:`parse_list_lines` / :func:`read_list_file`, so a line is accepted or refused for the
same reason whoever reads it. Every refused line is kept with its line number and a reason
that names the actual problem.

Lines:

* **ranked rows** — ``rank,domain`` (Tranco's format), read with the ``csv`` module: quoted
  fields, a UTF-8 byte-order mark and CRLF line ends are fine. The rank is a positive integer
  used once; the domain is a bare host name (lower-cased, trailing dot dropped, IDN turned
  into punycode, LDH labels, a non-numeric top-level domain) used once. Without a header a
  row has exactly two columns; a third is refused, naming it. A **header row** naming the
  columns (``rank`` and ``domain``/``host``/``site``…, as in Majestic's ``GlobalRank,…,Domain``)
  lets other columns be ignored (:attr:`ParsedList.ignored_columns`).
* **URLs or bare domains**, one per line (commas allowed in URLs): canonicalised by
  :func:`workers.urls.canonicalize`, a bare domain read as ``<scheme>://domain/``. Non-HTTP(S)
  schemes are refused (``mailto:``, ``ftp://``), never rewritten; so are e-mail addresses and
  URLs with credentials (``user@host``), which canonicalisation would silently turn into
  the host.

``kind="auto"`` (the CLI's) reads a line whose first field is a number as a ranked row and
anything else as a URL; ``kind="ranked"`` (a Tranco list) refuses lines that are not ranked
rows. Blank lines and ``#`` comments are ignored. Repeats are refused as duplicates (of the
first line with that URL, rank or domain).
"""

from __future__ import annotations

import csv
import gzip
import re
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal, NamedTuple

from workers.errors import ConfigError
from workers.urls import InvalidURL, canonicalize

__all__ = [
    "ListEntry",
    "ListKind",
    "ParsedList",
    "Rejected",
    "has_scheme",
    "normalize_domain",
    "parse_list_lines",
    "read_list_file",
]

ListKind = Literal["auto", "ranked", "urls"]

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_RANKED = re.compile(r'^\s*"?\s*[+-]?\d+(?:\.\d*)?\s*"?\s*,')
_OTHER_SEPARATOR = re.compile(r"^\s*\d+\s*([;\t|])\s*\S")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*:(?!\d+(?:[/?#]|$))")
_RANK_COLUMNS = ("rank", "globalrank", "position", "#")
_DOMAIN_COLUMNS = ("domain", "host", "hostname", "site", "website")
_SEPARATORS = {";": "';'", "\t": "a tab", "|": "'|'"}


@dataclass(frozen=True, slots=True)
class ListEntry:
    url: str
    """Canonical URL (:func:`workers.urls.canonicalize`)."""
    rank: int | None
    domain: str | None = None
    """The normalised domain of a ranked row (None for a URL line)."""


class Rejected(NamedTuple):
    """A refused line: its number (1-based, as an editor shows it), its text and why."""

    line: int
    text: str
    reason: str


@dataclass(slots=True)
class ParsedList:
    entries: list[ListEntry] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    """Every refused line, in file order."""
    ignored_columns: tuple[str, ...] = ()
    """Columns a header row named that are not the rank or the domain."""

    @property
    def ranked(self) -> list[tuple[int, str]]:
        """(rank, domain) of the ranked rows, in file order (what a Tranco snapshot stores)."""
        return [(e.rank, e.domain) for e in self.entries if e.rank is not None and e.domain is not None]


def has_scheme(text: str) -> bool:
    """``text`` starts with a URL scheme (``https:``, ``ftp:``, ``mailto:``), not ``host:port``."""
    return _SCHEME.match(text) is not None


def normalize_domain(raw: str) -> str:
    """The canonical host name of a list entry; :class:`InvalidURL` says why it is not one."""
    text = raw.strip().rstrip(".").lower()
    if not text:
        raise InvalidURL("empty domain")
    if _SCHEME.match(text) or "://" in text:
        scheme = text.split(":", 1)[0]
        if scheme not in ("http", "https"):
            canonicalize(text)  # raises with the URL module's reason (non-HTTP(S) scheme …)
        raise InvalidURL(
            f"{raw.strip()!r} is a URL where a bare domain belongs: a `rank,domain` row takes "
            "a domain (list URLs one per line instead)"
        )
    bad = next((c for c in text if c in "/:@ \t?#,;\\\"'"), None)
    if bad is not None:
        shown = {" ": "a space", "\t": "a tab"}.get(bad, repr(bad))
        raise InvalidURL(f"{raw.strip()!r} is not a bare domain ({shown} is not allowed in a host name)")
    if not text.isascii():
        try:
            text = text.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise InvalidURL(f"invalid internationalised domain {raw.strip()!r}: {exc}") from None
    if len(text) > 253:
        raise InvalidURL(f"domain longer than 253 characters ({len(text)})")
    labels = text.split(".")
    if len(labels) < 2:
        raise InvalidURL(f"{text!r} has no top-level domain")
    for label in labels:
        if not _LABEL.match(label):
            what = "an empty label" if not label else f"an invalid label {label!r}"
            raise InvalidURL(f"{text!r} has {what} (letters, digits and inner hyphens only)")
    if labels[-1].isdigit():
        raise InvalidURL(f"{text!r} is an IP address or has a numeric top-level domain")
    return text


def _csv_fields(line: str) -> list[str]:
    try:
        return [f.strip() for f in next(csv.reader([line], skipinitialspace=True))]
    except (csv.Error, StopIteration):
        return [line]


def _header(fields: list[str]) -> tuple[int, int, tuple[str, ...]] | None:
    """(rank column, domain column, other columns) when ``fields`` is a header row."""
    names = [f.strip().lower() for f in fields]
    rank = next((i for i, n in enumerate(names) if n in _RANK_COLUMNS), None)
    domain = next((i for i, n in enumerate(names) if n in _DOMAIN_COLUMNS), None)
    if rank is None or domain is None:
        return None
    return rank, domain, tuple(f for i, f in enumerate(fields) if i not in (rank, domain))


def _ranked_shape(line: str) -> bool:
    """A row meant as `rank,domain` whose rank is wrong (``x,foo.com``), not a URL with a comma."""
    if _SCHEME.match(line) or "," not in line:
        return False
    first = line.split(",", 1)[0]
    return "." not in first and "/" not in first


def _not_ranked_reason(line: str) -> str:
    sep = _OTHER_SEPARATOR.match(line)
    if sep:
        return (
            f"{_SEPARATORS[sep.group(1)]} separates the rank from the domain: a list row is "
            "`rank,domain` with a comma"
        )
    if _SCHEME.match(line):
        return "a URL where a `rank,domain` row belongs (list URLs in a URL list, without ranks)"
    if "," not in line:
        return "no rank: expected `rank,domain`"
    return "expected `rank,domain`"


def _rank(cell: str) -> int:
    text = cell.strip()
    if not re.fullmatch(r"[+-]?\d+", text):
        raise InvalidURL(f"rank {text!r} is not a whole number")
    rank = int(text)
    if rank < 1:
        raise InvalidURL(f"rank {rank} is not positive (ranks start at 1)")
    return rank


class _Parser:
    def __init__(self, *, scheme: str, kind: ListKind) -> None:
        if scheme not in ("http", "https"):
            raise ConfigError(f"scheme must be http or https, not {scheme!r}")
        self.scheme = scheme
        self.kind = kind
        self.out = ParsedList()
        self.columns: tuple[int, int] | None = None
        self.first_data = True
        self.url_line: dict[str, int] = {}
        self.rank_line: dict[int, int] = {}

    def refuse(self, number: int, line: str, reason: str) -> None:
        self.out.rejected.append(Rejected(number, line, reason))

    def add(self, number: int, line: str, url: str, rank: int | None, domain: str | None) -> None:
        first = self.url_line.get(url)
        if first is not None:
            self.refuse(number, line, f"duplicate of line {first} ({domain or url})")
            return
        if rank is not None:
            seen = self.rank_line.get(rank)
            if seen is not None:
                self.refuse(number, line, f"duplicate rank {rank} (first on line {seen})")
                return
            self.rank_line[rank] = number
        self.url_line[url] = number
        self.out.entries.append(ListEntry(url=url, rank=rank, domain=domain))

    def feed(self, number: int, line: str) -> None:
        if self.first_data:
            self.first_data = False
            if self.kind != "urls" and not _RANKED.match(line):
                header = _header(_csv_fields(line))
                if header is not None:
                    rank_col, domain_col, others = header
                    self.columns = (rank_col, domain_col)
                    self.out.ignored_columns = others
                    return
        if self.columns is not None:
            self.ranked_row(number, line)
        elif self.kind == "urls":
            self.url(number, line)
        elif _RANKED.match(line) or _ranked_shape(line):
            self.ranked_row(number, line)
        elif self.kind == "ranked":
            self.refuse(number, line, _not_ranked_reason(line))
        else:
            self.url(number, line)

    def ranked_row(self, number: int, line: str) -> None:
        fields = _csv_fields(line)
        if self.columns is not None:
            rank_col, domain_col = self.columns
            if len(fields) <= max(rank_col, domain_col):
                wanted = "rank" if len(fields) <= rank_col else "domain"
                column = rank_col if wanted == "rank" else domain_col
                self.refuse(
                    number,
                    line,
                    f"{len(fields)} columns: no column {column + 1} ({wanted}, as the header names it)",
                )
                return
        else:
            rank_col, domain_col = 0, 1
            if len(fields) > 2:
                self.refuse(
                    number,
                    line,
                    f"unexpected column 3 ({fields[2][:40]!r}): a row is `rank,domain` (a header row "
                    "naming the columns lets extra ones be ignored)",
                )
                return
            if len(fields) < 2 or not fields[1]:
                self.refuse(number, line, "no domain after the rank")
                return
        try:
            rank = _rank(fields[rank_col])
            domain = normalize_domain(fields[domain_col])
        except InvalidURL as exc:
            self.refuse(number, line, str(exc))
            return
        self.add(number, line, f"{self.scheme}://{domain}/", rank, domain)

    def url(self, number: int, line: str) -> None:
        sep = _OTHER_SEPARATOR.match(line)
        if sep:
            self.refuse(number, line, _not_ranked_reason(line))
            return
        scheme = line.split(":", 1)[0].lower() if _SCHEME.match(line) else None
        authority = line.split("://", 1)[1] if "://" in line else line
        if scheme in (None, "http", "https") and "@" in re.split(r"[/?#]", authority, maxsplit=1)[0]:
            what = "carries credentials (user@…)" if "://" in line else "looks like an e-mail address"
            self.refuse(number, line, f"{what}, not a URL to crawl: list it without the `…@` part")
            return
        try:
            url = canonicalize(line, default_scheme=self.scheme)
        except InvalidURL as exc:
            self.refuse(number, line, str(exc))
            return
        self.add(number, line, url, None, None)


class _Undecodable(NamedTuple):
    reason: str


def _parse(lines: Iterable[str | _Undecodable], *, scheme: str, kind: ListKind) -> ParsedList:
    parser = _Parser(scheme=scheme, kind=kind)
    for number, raw in enumerate(lines, start=1):
        if isinstance(raw, _Undecodable):
            parser.refuse(number, "", raw.reason)
            continue
        line = raw.strip()
        if number == 1:
            line = line.lstrip("\ufeff").strip()
        if line and not line.startswith("#"):
            parser.feed(number, line)
    return parser.out


def parse_list_lines(lines: Iterable[str], *, scheme: str = "https", kind: ListKind = "auto") -> ParsedList:
    """Parse list lines (see the module doc); ``scheme`` is given to bare domains."""
    return _parse(lines, scheme=scheme, kind=kind)


def _decoded(stream: Iterable[bytes]) -> Iterator[str | _Undecodable]:
    """Lines of a byte stream as text; a line that is not UTF-8 is refused, not guessed."""
    for raw in stream:
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            yield _Undecodable(f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})")


def _open_member(archive: zipfile.ZipFile, path: Path) -> IO[bytes]:
    members = [i for i in archive.infolist() if not i.is_dir()]
    lists = [i for i in members if i.filename.lower().endswith((".csv", ".txt", ".lst"))]
    chosen = lists or members
    if not chosen:
        raise ConfigError(f"{path}: the ZIP archive is empty")
    if len(chosen) > 1:
        names = ", ".join(i.filename for i in chosen[:5])
        raise ConfigError(f"{path}: the ZIP holds several lists ({names}); unzip the one to crawl")
    return archive.open(chosen[0])


def read_list_file(path: Path, *, scheme: str = "https", kind: ListKind = "auto") -> ParsedList:
    """A list file: plain text, gzip or a ZIP holding one list (Tranco's ``top-1m.csv.zip``)."""
    if not path.is_file():
        raise ConfigError(f"list file not found: {path} (pass a Tranco CSV, a URL list, or URLs)")
    try:
        with path.open("rb") as handle:
            head = handle.read(4096)
        if head[:2] == b"\x1f\x8b":
            with gzip.open(path, "rb") as stream:
                return _parse(_decoded(stream), scheme=scheme, kind=kind)
        if head[:4] == b"PK\x03\x04":
            with zipfile.ZipFile(path) as archive, _open_member(archive, path) as stream:
                return _parse(_decoded(stream), scheme=scheme, kind=kind)
        if head.startswith((b"\xff\xfe", b"\xfe\xff")):
            raise ConfigError(f"{path} is UTF-16 text: save it as UTF-8")
        if b"\x00" in head:
            raise ConfigError(f"{path} is not a text list (binary content): pass a CSV, a URL list or a ZIP")
        with path.open("rb") as stream:
            return _parse(_decoded(stream), scheme=scheme, kind=kind)
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
