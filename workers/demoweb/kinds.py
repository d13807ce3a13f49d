"""The outcome table: every kind of demo URL and what a correct pipeline does with it.

A URL list (urls.py) and the site tree (graph.py) both name their pages by these kinds, so
the expected outcome of a page is written down exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from workers.demoweb.site import PRIVATE_PREFIX
from workers.demoweb.special import CHARSET_VARIANTS

__all__ = ["KINDS", "SPECIAL_KINDS", "KindSpec", "Outcome", "Route"]

Outcome = Literal["stored", "dead_lettered", "skipped", "any"]
Route = Literal["fast", "rich"]


@dataclass(frozen=True, slots=True)
class KindSpec:
    path: str
    """Path template; ``{n}`` is a per-host counter, ``{delay}`` the timeout delay."""
    expected: Outcome
    route: Route | None = None
    reason: str | None = None
    """Why a URL is dead-lettered or skipped (a hint for humans and tests, not an exact string)."""
    failing: bool = False
    """Makes at least one request fail (counts toward the per-host failure budget)."""
    listed: bool = True
    """``demo_urls`` may put this kind in a URL list; False for kinds that only exist as
    pages of the site tree (graph.py), reached by following links."""


def _tree(path: str, expected: Outcome = "stored", reason: str | None = None) -> KindSpec:
    return KindSpec(path, expected, "fast" if expected == "stored" else None, reason, listed=False)


KINDS: dict[str, KindSpec] = {
    "home": KindSpec("/", "stored", "fast"),
    "article": KindSpec("/article/{n}", "stored", "fast"),
    "listing": KindSpec("/list/{n}", "stored", "fast"),
    "spa": KindSpec("/app/{n}", "stored", "rich"),
    "redirect": KindSpec("/redirect/{n}/{hops}", "stored", "fast"),
    "redirect_too_many": KindSpec("/redirect/{n}/8", "dead_lettered", None, "too_many_redirects", True),
    "redirect_loop": KindSpec("/redirect-loop/{n}", "dead_lettered", None, "too_many_redirects", True),
    "not_found": KindSpec("/missing/{n}", "dead_lettered", None, "http_404", True),
    "gone": KindSpec("/gone/{n}", "dead_lettered", None, "http_410", True),
    "server_error": KindSpec("/error/{n}", "dead_lettered", None, "http_500", True),
    "flaky": KindSpec("/flaky/{n}", "stored", "fast", None, True),
    "throttled": KindSpec("/throttle/{n}", "stored", "fast", None, True),
    "throttled_always": KindSpec("/throttle-always/{n}", "dead_lettered", None, "http_429", True),
    # robots.txt disallow is a skip, never fetched (PLAN.md: outcomes and the batch ledger).
    "robots_blocked": KindSpec(PRIVATE_PREFIX + "{n}", "skipped", None, "robots"),
    "slow": KindSpec("/slow/{n}", "stored", "fast"),
    "timeout": KindSpec("/slow/{n}?delay={delay}", "dead_lettered", None, "timeout", True),
    "stall": KindSpec("/stall/{n}", "dead_lettered", None, "timeout", True),
    "huge": KindSpec("/huge/{n}", "stored", "fast"),
    "huge_length": KindSpec("/huge/{n}?length=1", "stored", "fast"),
    "pdf": KindSpec("/files/{n}.pdf", "skipped", None, "non_html"),
    "json": KindSpec("/data/{n}.json", "skipped", None, "non_html"),
    "image": KindSpec("/images/{n}.png", "skipped", None, "non_html"),
    "report": KindSpec("/report/{n}", "skipped", None, "non_html"),
    "xhtml": KindSpec("/xhtml/{n}", "stored", "fast"),
    **{
        f"charset_{v.replace('-', '_')}": KindSpec(f"/charset/{v}/{{n}}", "stored", "fast")
        for v in CHARSET_VARIANTS
    },
    # Pages of the site tree (graph.py): reached by discovery, never put in lists.
    "section": _tree("/section/{n}"),
    "section_page": _tree("/section/{n}/{p}"),
    "static": _tree("/about"),
    "private_page": _tree(PRIVATE_PREFIX + "{n}"),
    "admin": _tree("/admin/", "skipped", "robots"),
    "calendar_month": _tree("/calendar/{yyyy}-{mm}"),
    "calendar_day": _tree("/calendar/{yyyy}-{mm}-{dd}"),
    "calendar_event": _tree("/calendar/{yyyy}-{mm}-{dd}/{n}"),
    "blog_home": _tree("/ on blog.<site>"),
    "blog_post": _tree("/post/{n} on blog.<site>"),
    "noindex": _tree("/noindex/{n}", "skipped", "noindex"),
    "robots_none": _tree("/none/{n}", "skipped", "noindex"),
    "meta_nofollow": _tree("/nofollow/{n}"),
    "x_robots_noindex": _tree("/x-robots/noindex", "skipped", "noindex"),
    "x_robots_nofollow": _tree("/x-robots/nofollow"),
    "hidden": _tree("/noindex/{n}/{i} (children of the robots pages)"),
    "sponsored": _tree("/sponsored/{n} (linked only with rel=nofollow)"),
    "unknown": _tree("anything else", "dead_lettered", "http_404"),
}
SPECIAL_KINDS: Final = tuple(
    k for k, spec in KINDS.items() if spec.listed and k not in ("home", "article", "listing", "spa")
)
"""Kinds ``demo_urls`` mixes into a list beside the plain pages."""
