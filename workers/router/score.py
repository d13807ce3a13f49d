"""Static-vs-dynamic scoring of one page: ``score_page(html) -> RouteDecision``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final, Literal

from workers.router.rules import (
    BASE_SCORE,
    DEFAULT_THRESHOLD,
    DEFAULT_WEIGHTS,
    TEXT_PLENTY_CHARS,
    TEXT_POOR_CHARS,
    TEXT_RICH_CHARS,
)
from workers.router.scan import has_empty_root, scan_page

__all__ = ["Route", "RouteDecision", "score_page"]

Route = Literal["fast", "rich"]

SCRIPT_HEAVY_HIDDEN: Final = 0.9
"""``script_heavy``: share of the page's bytes inside script/style/noscript/template/comments..."""
SCRIPT_HEAVY_TEXT: Final = 0.01
"""...while visible characters are below this share of the page's bytes."""

# Rule order in RouteDecision.rules: the table's order, stable across runs.
_ORDER: Final = {name: i for i, name in enumerate(DEFAULT_WEIGHTS)}


@dataclass(slots=True, frozen=True)
class RouteDecision:
    """The router's verdict for one page."""

    route: Route
    score: int
    rules: list[str] = field(default_factory=list)
    """Names of the rules that matched, in table order (see workers/router/rules.py)."""
    text_chars: int = 0
    """Estimated visible characters (whitespace not counted)."""


def score_page(
    html: bytes | str,
    *,
    weights: Mapping[str, int] | None = None,
    threshold: int = DEFAULT_THRESHOLD,
) -> RouteDecision:
    """Score ``html`` from 100 with the rule table; ``score >= threshold`` routes ``fast``.

    ``weights`` overrides default weights by rule name (validate user input once with
    :func:`workers.router.rules.resolve_weights`); unknown names are ignored here. Never
    raises on malformed HTML: any bytes give a decision.
    """
    data = html.encode("utf-8", "surrogatepass") if isinstance(html, str) else html
    scan = scan_page(data)
    fired = scan.markers
    text = scan.text_chars
    if text > TEXT_RICH_CHARS:
        fired.add("text_rich")
    elif text < TEXT_POOR_CHARS:
        fired.add("text_poor")
    if text >= TEXT_PLENTY_CHARS:
        fired.add("text_plenty")
    elif has_empty_root(data, scan, custom_elements=text < TEXT_POOR_CHARS):
        fired.add("empty_root")
    if scan.scripts == 0:
        fired.add("no_scripts")
    total = scan.total_bytes
    if scan.scripts and scan.hidden_bytes > SCRIPT_HEAVY_HIDDEN * total and text < SCRIPT_HEAVY_TEXT * total:
        fired.add("script_heavy")
    table = DEFAULT_WEIGHTS if weights is None else {**DEFAULT_WEIGHTS, **weights}
    rules = sorted((name for name in fired if table[name]), key=_ORDER.__getitem__)
    score = BASE_SCORE + sum(table[name] for name in rules)
    return RouteDecision(
        route="fast" if score >= threshold else "rich", score=score, rules=rules, text_chars=text
    )
