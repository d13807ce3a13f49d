"""JSON cursors: a sensor's state between ticks."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dump_cursor", "load_cursor"]


def load_cursor(cursor: str | None) -> dict[str, Any]:
    """The state saved by the last tick; an empty or unreadable cursor starts afresh."""
    if not cursor:
        return {}
    try:
        value = json.loads(cursor)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def dump_cursor(state: dict[str, Any]) -> str:
    return json.dumps(state, separators=(",", ":"), sort_keys=True)
