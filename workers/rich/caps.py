"""Size caps of what the renderer produces: cut text to a number of UTF-8 bytes."""

from __future__ import annotations

__all__ = ["truncate_utf8"]


def truncate_utf8(text: str, max_bytes: int) -> tuple[str, bool]:
    """``text`` cut to at most ``max_bytes`` UTF-8 bytes (never inside a character), and whether it was cut."""
    if len(text) * 4 <= max_bytes:  # fast path: no string this short can be over the cap
        return text, False
    data = text.encode("utf-8", "replace")
    if len(data) <= max_bytes:
        return text, False
    return data[:max_bytes].decode("utf-8", "ignore"), True
