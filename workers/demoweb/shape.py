"""The shape of a generated site's tree: how many sections, pages, articles, which special pages.

Seeded by host name like :func:`~workers.demoweb.site.site_profile`, so every process and
the oracle see the same tree. graph.py turns a shape into pages and links.

Special pages (failure kinds, redirects, non-HTML, charsets, SPA shells) are spread over
sites by the site's number: every site links at most :data:`MAX_FAILING` pages whose first
request fails, so a per-host circuit breaker never trips on the healthy pages of a site,
and the slow-to-fail ones (``stall``) and the heavy ones (``huge``) sit on few sites only.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from workers.demoweb.hosts import DEMO_SUFFIX
from workers.demoweb.kinds import KINDS
from workers.demoweb.text import rng_for

__all__ = [
    "BLOG_PREFIX",
    "MAX_FAILING",
    "SiteShape",
    "Special",
    "main_host_of",
    "site_index",
    "site_shape",
]

BLOG_PREFIX: Final = "blog."
"""``blog.site-NNN.demo.test`` is the blog of ``site-NNN.demo.test``: same registered domain
(with ``demo.test`` as a public suffix), another host."""
MAX_FAILING: Final = 2
_SITE_RE: Final = re.compile(r"^site-(\d+)\." + re.escape(DEMO_SUFFIX) + "$")

# Failing kinds rotate over sites two at a time; the others three at a time.
_FAILING: Final = (
    "not_found",
    "server_error",
    "flaky",
    "throttled",
    "gone",
    "redirect_loop",
    "throttled_always",
    "redirect_too_many",
)
_OTHER: Final = (
    "redirect",
    "slow",
    "report",
    "xhtml",
    "charset_windows_1251",
    "charset_shift_jis",
    "charset_bogus",
    "charset_invalid_utf8",
    "charset_meta_mismatch",
    "charset_undeclared",
)
# Rare kinds replace one rotation slot on every 15th site (by site number modulo 15).
_RARE: Final = {5: ("stall", True), 10: ("huge", False), 0: ("huge_length", False)}


@dataclass(frozen=True, slots=True)
class Special:
    kind: str
    """A key of urls.KINDS."""
    path: str
    section: int
    """Listed on page 1 of this section."""


@dataclass(frozen=True, slots=True)
class SiteShape:
    host: str
    index: int | None
    """NNN of ``site-NNN.demo.test``; None for other generated hosts."""
    sections: int
    pages: tuple[int, ...]
    """Listing pages of each section (section s has ``pages[s - 1]`` pages)."""
    articles_per_page: int
    blog_posts: int
    calendar_start: tuple[int, int]
    """(year, month) the home page's calendar link opens at."""
    calendar_daily: bool
    """Months link every day (about 1 site in 5) rather than one day a week: at depth 3 such a
    site has more than 200 pages, so a budget of 200 pages per host binds there."""
    events_per_day: int
    partners: tuple[int, ...]
    """Lower-numbered sites whose home pages this site links to."""
    specials: tuple[Special, ...]

    @functools.cached_property
    def special_by_path(self) -> dict[str, Special]:
        return {s.path: s for s in self.specials}


def site_index(host: str) -> int | None:
    match = _SITE_RE.match(host)
    return int(match.group(1)) if match else None


def main_host_of(host: str) -> str | None:
    """``site-001.demo.test`` for ``blog.site-001.demo.test``; None for a main site's host."""
    if host.startswith(BLOG_PREFIX):
        return host[len(BLOG_PREFIX) :]
    return None


def _specials(index: int | None, sections: int) -> tuple[Special, ...]:
    if index is None:
        return ()
    kinds = [_FAILING[(2 * index + j) % len(_FAILING)] for j in range(MAX_FAILING)]
    kinds += [_OTHER[(3 * index + j) % len(_OTHER)] for j in range(3)]
    rare = _RARE.get(index % 15)
    if rare is not None:
        kind, failing = rare
        kinds[0 if failing else -1] = kind
    out = []
    for j, kind in enumerate(kinds, start=1):
        path = KINDS[kind].path.format(n=j, hops=1 + j % 3, delay="")
        out.append(Special(kind, path, section=1 + (j - 1) % sections))
    return tuple(out)


@functools.lru_cache(maxsize=8192)
def site_shape(host: str, *, link_hosts: int) -> SiteShape:
    """The tree of ``host``; ``link_hosts`` caps which sites it links to (site-001 .. that)."""
    rng = rng_for("shape", host)
    index = site_index(host)
    sections = rng.randint(3, 5)
    pages = tuple(rng.randint(2, 4) for _ in range(sections))
    upto = min((index or 1) - 1, link_hosts)
    partners = tuple(sorted(rng.sample(range(1, upto + 1), min(3, upto)))) if upto > 0 else ()
    daily = rng.random() < 0.2
    return SiteShape(
        host=host,
        index=index,
        sections=sections,
        pages=pages,
        articles_per_page=rng.randint(4, 7),
        blog_posts=rng.randint(3, 5),
        calendar_start=(2024, rng.randint(1, 12)),
        calendar_daily=daily,
        events_per_day=4 if daily else 2,
        partners=partners,
        specials=_specials(index, sections),
    )
