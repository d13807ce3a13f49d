"""Per-host site profiles (seeded by host name) and their robots.txt.

A profile fixes what does not change from page to page on one site: its name, language,
topic, categories, robots rules and SPA flavour. The same host always gets the same
profile, in every process.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from workers.demoweb.hosts import demo_host
from workers.demoweb.text import LANGS, TOPICS, headline, rng_for, site_name

__all__ = [
    "PRIVATE_PREFIX",
    "Origin",
    "SiteProfile",
    "page_title",
    "robots_txt",
    "site_profile",
]

PRIVATE_PREFIX: Final = "/private/"
"""Disallowed by robots.txt on sites whose profile has ``disallow_private``."""

_CATEGORIES: Final = (
    "World",
    "Local",
    "Business",
    "Tech",
    "Science",
    "Sport",
    "Culture",
    "Travel",
    "Opinion",
    "Health",
    "Climate",
    "Food",
    "Education",
    "Media",
    "Cities",
    "Data",
)
_SPA_FLAVOURS: Final = ("react", "nuxt", "angular")


@dataclass(frozen=True, slots=True)
class SiteProfile:
    host: str
    name: str
    lang: str
    topic: str
    categories: tuple[str, ...]
    disallow_private: bool
    """robots.txt disallows ``/private/`` (about 30% of sites)."""
    has_crawl_delay: bool
    """robots.txt carries a Crawl-delay (about 10% of sites)."""
    spa_flavour: str
    """Markup of this site's SPA shells: ``react``, ``nuxt`` or ``angular``."""
    framework_share: float
    """Share of this site's static articles that carry SPA framework markers anyway."""


@functools.lru_cache(maxsize=8192)
def site_profile(host: str) -> SiteProfile:
    rng = rng_for("site", host)
    cats = list(_CATEGORIES)
    rng.shuffle(cats)
    return SiteProfile(
        host=host,
        name=site_name(rng),
        lang=rng.choice(LANGS),
        topic=rng.choice(sorted(TOPICS)),
        categories=tuple(cats[: rng.randint(6, 10)]),
        disallow_private=rng.random() < 0.3,
        has_crawl_delay=rng.random() < 0.1,
        spa_flavour=rng.choice(_SPA_FLAVOURS),
        framework_share=rng.choice((0.0, 0.1, 0.25, 0.5)),
    )


def page_title(profile: SiteProfile, path: str) -> str:
    """The headline of the article served at ``path`` (used by tests and URL markers)."""
    return headline(rng_for(profile.host, "article", path), profile.topic)


def robots_txt(
    profile: SiteProfile, *, crawl_delay_s: float, base: str, sitemaps: Sequence[str] = ("/sitemap.xml",)
) -> bytes:
    lines = ["# robots.txt for " + profile.name, "User-agent: *", "Disallow: /admin/"]
    if profile.disallow_private:
        lines.append(f"Disallow: {PRIVATE_PREFIX}")
    if profile.has_crawl_delay:
        lines.append(f"Crawl-delay: {crawl_delay_s:g}")
    lines += ["", "User-agent: BadBot", "Disallow: /", ""]
    lines += [f"Sitemap: {base}{path}" for path in sitemaps] + [""]
    return "\n".join(lines).encode()


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a page is served from, as the client addressed it (the Host header)."""

    host: str
    """Host name without port, lower case."""
    port_suffix: str
    """``:PORT`` as in the Host header, or empty."""
    link_hosts: int
    """Outlinks to other demo sites go to site-001 .. site-<link_hosts>."""

    @property
    def base(self) -> str:
        return f"http://{self.host}{self.port_suffix}"

    def other(self, index: int) -> str:
        return self.url(demo_host(index))

    def url(self, host: str) -> str:
        """``http://host:port`` of another demo host on the same server."""
        return f"http://{host}{self.port_suffix}"
