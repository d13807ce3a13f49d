"""The router's rule table: stable rule names, default weights and text thresholds.

A page starts at :data:`BASE_SCORE`; every rule that matches adds its weight once. Pages
scoring at or above the threshold (``RouterSettings.threshold``, 80 by default) take the
fast path, the others are rendered in a browser. ``RouterSettings.weights`` overrides
weights by the names below (a weight of 0 switches a rule off).

The first eleven rules are the design's table. The last four were added because the
measurements demanded them (see bench/stage_router.py and the report in BENCHMARKS.md):

* framework markers (``next_data``, ``noscript``, ``script_bundle`` ...) appear on about a
  quarter of real, fully server-rendered news pages, so a page with plenty of visible text
  gets ``text_plenty``: it must never be sent to the browser;
* an empty SPA mount point (``<div id="root"></div>``, ``<app-root></app-root>``) is the
  strongest sign that the content only exists after JavaScript runs (``empty_root``);
* a page without any ``<script>`` cannot change when rendered (``no_scripts``);
* a page whose markup is almost all script/style with little text left is an app shell
  (``script_heavy``).

Measured (bench/stage_router.py): the design table alone sends 7 of the 130 readability
articles (all readable without JavaScript) to the browser; with these rules all 130 route
fast, and all 8 client-rendered TodoMVC apps (``csr``, ``csr-shadow-dom``) route rich.
The three ``static-shell+js`` apps hold their visible strings in static HTML and show
nothing more after rendering on a first visit (the list is empty), so either route is
acceptable: backbone and jquery score 85 (fast, thanks to ``<main>``), javascript-es6
scores 60 (rich, webpack bundle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from workers.errors import ConfigError

__all__ = [
    "BASE_SCORE",
    "DEFAULT_THRESHOLD",
    "DEFAULT_WEIGHTS",
    "RULE_DESCRIPTIONS",
    "TEXT_PLENTY_CHARS",
    "TEXT_POOR_CHARS",
    "TEXT_RICH_CHARS",
    "resolve_weights",
]

BASE_SCORE: Final = 100
DEFAULT_THRESHOLD: Final = 80

TEXT_RICH_CHARS: Final = 3000
"""``text_rich`` fires above this many visible characters (whitespace not counted)."""
TEXT_POOR_CHARS: Final = 500
"""``text_poor`` fires below this many visible characters."""
TEXT_PLENTY_CHARS: Final = 1500
"""``text_plenty`` fires at or above this many visible characters."""

DEFAULT_WEIGHTS: Final[Mapping[str, int]] = {
    # the design's table
    "next_data": -30,
    "nuxt": -20,
    "angular": -40,
    "react_root": -15,
    "script_bundle": -25,
    "noscript": -10,
    "loading_indicator": -20,
    "article": 20,
    "main_content": 15,
    "text_rich": 10,
    "text_poor": -30,
    # added by measurement
    "text_plenty": 100,
    "empty_root": -40,
    "no_scripts": 30,
    "script_heavy": -15,
}

RULE_DESCRIPTIONS: Final[Mapping[str, str]] = {
    "next_data": "`__NEXT_DATA__` (Next.js data script)",
    "nuxt": "`window.__NUXT__` (Nuxt state)",
    "angular": "`ng-app` / `ng-controller` attribute outside scripts (AngularJS)",
    "react_root": "`data-reactroot` attribute outside scripts",
    "script_bundle": "a `<script>` start tag mentioning `bundle` (webpack-style bundle)",
    "noscript": "a `<noscript>` element",
    "loading_indicator": "a class or id containing `loading` or `spinner` outside scripts",
    "article": "an `<article>` element",
    "main_content": "a `<main>` element",
    "text_rich": f"more than {TEXT_RICH_CHARS} visible characters",
    "text_poor": f"fewer than {TEXT_POOR_CHARS} visible characters",
    "text_plenty": f"at least {TEXT_PLENTY_CHARS} visible characters: readable without JavaScript",
    "empty_root": "an empty SPA mount point (`<div id=root|app|__next ...></div>`, empty custom element)",
    "no_scripts": "no `<script>` element at all: rendering cannot change the page",
    "script_heavy": "scripts and styles are over 90% of the bytes and visible text is under 1% of them",
}


def resolve_weights(overrides: Mapping[str, int] | None = None) -> dict[str, int]:
    """The default weights with ``overrides`` applied; unknown rule names raise ConfigError."""
    weights = dict(DEFAULT_WEIGHTS)
    for name, value in (overrides or {}).items():
        if name not in weights:
            known = ", ".join(sorted(weights))
            raise ConfigError(f"unknown router rule {name!r} in weights (known: {known})")
        weights[name] = int(value)
    return weights
