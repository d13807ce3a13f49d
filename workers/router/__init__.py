"""The router's pure logic: score a page static (fast path) or dynamic (rich path).

The daemon (Kafka in, ``process.fast`` / ``process.rich`` out) lives elsewhere and calls
:func:`score_page` once per page; nothing here does I/O.
"""

from __future__ import annotations

from workers.router.rules import DEFAULT_WEIGHTS, resolve_weights
from workers.router.score import Route, RouteDecision, score_page

__all__ = ["DEFAULT_WEIGHTS", "Route", "RouteDecision", "resolve_weights", "score_page"]
