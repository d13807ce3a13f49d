"""Reading `crawl` targets: list files (Tranco CSV/ZIP/gzip, URL lists) and URLs given as arguments.

A target is, in this order:

1. a URL when it starts with a scheme (``https://x/robots.txt``, ``ftp://…``, ``mailto:…``):
   never looked up as a path, and refused with the URL's actual problem if it is not http(s);
2. a list file when a file by that name exists;
3. a missing list file when it looks like a path (``./x``, ``/x``, ``~/x``, ``dir/x``, or a
   ``.csv``/``.txt``/``.lst``/``.tsv``/``.gz`` name);
4. otherwise a bare domain or a scheme-less URL (``example.com``, ``example.com/a``).

Files and arguments are parsed by :mod:`workers.lists`, the parser Dagster uses too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from workers.errors import ConfigError
from workers.lists import ListEntry, Rejected, has_scheme, parse_list_lines, read_list_file

__all__ = ["Targets", "load_targets"]

_LIST_SUFFIXES = {".csv", ".txt", ".lst", ".tsv", ".gz"}


@dataclass(slots=True)
class Targets:
    entries: list[ListEntry] = field(default_factory=list)
    """Unique canonical URLs, in input order (the first occurrence wins)."""
    rejected: list[tuple[str, Rejected]] = field(default_factory=list)
    """(file, refused line) of every list file."""


def _looks_like_path(target: str) -> bool:
    if target.startswith(("/", "./", "../", "~")):
        return True
    path = Path(target)
    if any(s.lower() in _LIST_SUFFIXES for s in path.suffixes):
        return "/" not in target or "." not in target.split("/", 1)[0]
    return "/" in target and "." not in target.split("/", 1)[0]


def _without_echo(reason: str, text: str) -> str:
    """canonicalize's messages end with the input; the CLI shows it once."""
    return reason.removesuffix(f": {text!r}")


def _inline(target: str, scheme: str) -> ListEntry:
    parsed = parse_list_lines([target], scheme=scheme, kind="urls")
    if parsed.rejected:
        reason = _without_echo(parsed.rejected[0].reason, target)
        raise ConfigError(f"cannot crawl {target!r}: {reason}")
    return parsed.entries[0]


def load_targets(targets: list[str], *, scheme: str) -> Targets:
    """Parse every target (see the module doc); raises when nothing valid is left."""
    out = Targets()
    lines = 0
    for target in targets:
        if has_scheme(target):
            out.entries.append(_inline(target, scheme))
            continue
        path = Path(target).expanduser()
        if path.is_file():
            parsed = read_list_file(path, scheme=scheme)
            out.entries.extend(parsed.entries)
            out.rejected.extend((target, r) for r in parsed.rejected)
            lines += len(parsed.entries) + len(parsed.rejected)
        elif path.is_dir():
            raise ConfigError(f"{target} is a directory: pass a list file, a URL or a domain")
        elif _looks_like_path(target):
            raise ConfigError(f"list file not found: {target} (check the path)")
        else:
            out.entries.append(_inline(target, scheme))
    first = {e.url: e for e in reversed(out.entries)}
    out.entries = [e for e in out.entries if first.get(e.url) is e]
    if not out.entries:
        if out.rejected:
            name, r = out.rejected[0]
            raise ConfigError(
                f"nothing to crawl: all {lines} lines were refused (first: {name} line {r.line}: {r.reason})"
            )
        raise ConfigError("nothing to crawl: the inputs contain no URL or domain")
    return out
