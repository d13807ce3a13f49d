"""Reading `crawl` targets: list files (Tranco CSV, URL lists) and URLs given as arguments."""

from __future__ import annotations

from pathlib import Path

from workers.errors import ConfigError
from workers.frontier import ParsedList, parse_list_lines, read_list_file

__all__ = ["load_targets"]


def load_targets(targets: list[str], *, scheme: str) -> ParsedList:
    """Files are read as lists; anything else must be a URL or a domain."""
    merged = ParsedList()
    inline: list[str] = []
    for target in targets:
        path = Path(target)
        if path.is_file():
            parsed = read_list_file(path, scheme=scheme)
            merged.entries.extend(parsed.entries)
            merged.rejected.extend(parsed.rejected)
        elif path.suffix.lower() in (".csv", ".txt", ".lst") or ("/" in target and "." not in target):
            raise ConfigError(f"list file not found: {target} (check the path)")
        else:
            inline.append(target)
    if inline:
        parsed = parse_list_lines(inline, scheme=scheme)
        for _number, line, reason in parsed.rejected:
            raise ConfigError(f"not a URL or domain: {line!r} ({reason})")
        merged.entries.extend(parsed.entries)
    unique = {e.url: e for e in reversed(merged.entries)}  # first occurrence wins
    merged.entries = [e for e in merged.entries if unique.get(e.url) is e]
    if not merged.entries:
        raise ConfigError("nothing to crawl: the inputs contain no valid URL or domain")
    return merged
