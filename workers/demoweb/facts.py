"""What a crawler learns by requesting one URL of the demo web, derived from graph.py.

:class:`DemoPages` answers for a canonical URL: its kind and outcome (kinds.KINDS, with
``/slow/`` and ``/stall/`` timing out or not by the server's config and the crawler's
timeout), its final URL after redirects, and its links as discovery sees them — resolved
against the final URL (or ``<base href>``) with the extractor's own
:class:`~workers.extract.links.Resolver`, canonicalised with :func:`workers.urls.canonicalize`,
flagged rel=nofollow — and whether they may be followed at all (meta robots / X-Robots-Tag).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Final
from urllib.parse import parse_qs, urljoin, urlsplit

from workers.demoweb.app import DemoWebConfig
from workers.demoweb.graph import Node, node
from workers.demoweb.hosts import is_demo_host
from workers.demoweb.kinds import KINDS, Outcome
from workers.demoweb.site import Origin
from workers.demoweb.sitemaps import sitemap_entries
from workers.errors import ConfigError
from workers.extract.links import Resolver
from workers.urls import InvalidURL, canonicalize

__all__ = ["FETCH_TIMEOUT_S", "FOLLOWED_OUTCOMES", "DemoPages", "PageFacts"]

FETCH_TIMEOUT_S: Final = 30.0
"""IngestorSettings.total_timeout_s's default."""
FOLLOWED_OUTCOMES: Final = ("stored", "skipped")
"""Outcomes of fetched pages (with reason None or noindex) whose links discovery reads."""


@dataclass(frozen=True, slots=True)
class PageFacts:
    """What a crawler learns by requesting one URL of the demo web."""

    url: str
    kind: str
    outcome: Outcome
    reason: str | None
    final_url: str
    links: tuple[tuple[str, bool], ...]
    """(canonical URL, has rel=nofollow) for every http(s) link of the page, in order, deduplicated."""
    follows_links: bool
    """The page was fetched (stored, or skipped as noindex) and is not nofollow."""
    level: int | None


class DemoPages:
    """Pages of the demo web by canonical URL (graph.py + the extractor's link resolution).

    ``config`` is the demo server's; ``fetch_timeout_s`` the crawler's total timeout per
    fetch (IngestorSettings.total_timeout_s): a ``/slow/`` page slower than that, or a
    ``/stall/`` page that trickles longer, is a timeout.
    """

    def __init__(
        self, config: DemoWebConfig | None = None, *, fetch_timeout_s: float = FETCH_TIMEOUT_S
    ) -> None:
        self.config = config or DemoWebConfig()
        self.link_hosts = self.config.link_hosts
        self.fetch_timeout_s = fetch_timeout_s
        self._canonical: dict[str, str | None] = {}

    def origin(self, url: str) -> tuple[Origin, str]:
        parts = urlsplit(url)
        host = (parts.hostname or "").lower()
        if not is_demo_host(host) or host.split(".")[0] in ("readability", "spa", "rendertron"):
            raise ConfigError(f"the demo oracle knows the generated demo sites only, not {url!r}")
        port = f":{parts.port}" if parts.port else ""
        return Origin(host, port, self.link_hosts), parts.path or "/"

    def canonical(self, raw: str) -> str | None:
        if raw not in self._canonical:
            try:
                self._canonical[raw] = canonicalize(raw)
            except InvalidURL:
                self._canonical[raw] = None
        return self._canonical[raw]

    @functools.lru_cache(maxsize=65_536)  # noqa: B019 - one DemoPages per oracle run
    def page(self, url: str) -> PageFacts:
        origin, path = self.origin(url)
        page = node(origin, path)
        spec = KINDS[self._timed_kind(page.kind, url)]
        outcome: Outcome = spec.expected if spec.expected != "any" else "stored"
        final_url = origin.base + page.final_path if page.final_path else url
        content: Node = node(origin, page.final_path) if page.final_path else page
        directives = {
            d.strip().lower() for v in (content.robots_meta, content.x_robots) if v for d in v.split(",")
        }
        nofollow_page = bool(directives & {"nofollow", "none"})
        base = urljoin(final_url, content.base_href) if content.base_href else final_url
        resolver = Resolver(base)
        links: dict[str, bool] = {}
        for link in content.links:
            resolved = resolver.resolve(link.href)
            canonical = self.canonical(resolved) if resolved else None
            if canonical is None:
                continue
            nofollow = "nofollow" in (link.rel or "").lower().split()
            links[canonical] = links.get(canonical, True) and nofollow
        return PageFacts(
            url=url,
            kind=self._timed_kind(page.kind, url),
            outcome=outcome,
            reason=spec.reason,
            final_url=final_url,
            links=tuple(links.items()),
            follows_links=outcome in FOLLOWED_OUTCOMES
            and spec.reason in (None, "noindex")
            and not nofollow_page,
            level=page.level,
        )

    def _timed_kind(self, kind: str, url: str) -> str:
        """``slow`` and ``stall`` pages time out or not depending on the delay and the crawler."""
        if kind == "slow":
            query = parse_qs(urlsplit(url).query)
            try:
                delay = float(query["delay"][0]) if "delay" in query else self.config.slow_delay_s
            except ValueError:
                delay = self.config.slow_delay_s
            return (
                "timeout" if min(max(delay, 0.0), self.config.max_delay_s) >= self.fetch_timeout_s else kind
            )
        if kind == "stall" and self.config.stall_max_s < self.fetch_timeout_s:
            return "slow"  # the trickle ends before the crawler gives up: an article, slowly
        return kind

    def sitemap_seeds(self, listed_url: str) -> list[str]:
        """Canonical URLs the sitemaps of ``listed_url``'s host list (before any scope check)."""
        origin, _ = self.origin(listed_url)
        out: dict[str, None] = {}
        for raw in sitemap_entries(origin):
            canonical = self.canonical(raw)
            if canonical is not None:
                out[canonical] = None
        return list(out)
