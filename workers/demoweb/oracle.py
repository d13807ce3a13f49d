"""What a correct crawl of the demo web requests and stores, derived from graph.py, never by crawling.

:func:`expect_crawl` takes the listed URLs, the batch's :class:`~workers.messages.Scope`
and ``sitemaps`` and returns an :class:`Expectation`: every URL a correct crawl requests with
its depth and outcome (``stored`` | ``skipped`` + reason | ``dead_lettered`` + reason), the
links it must never request (nofollow, out of scope, assets, too deep) and whether the
answer is exact.

The crawl semantics it implements are discovery's (PLAN.md, issue 8):

* URL identity is :func:`workers.urls.canonicalize`; links resolve against the page's final
  URL (or ``<base href>``) with the extractor's own :class:`~workers.extract.links.Resolver`.
* Listed URLs are depth 0; a page at depth d < max_depth has its links admitted at d + 1
  through :meth:`ScopeRules.reject <workers.scope.ScopeRules.reject>` with
  :func:`~workers.scope.child_seed`; "new to the batch" is decided once per URL.
* Links are read only from pages fetched successfully (stored, or skipped as noindex);
  rel=nofollow links are dropped unless ``follow_nofollow``; a page with meta robots
  nofollow/none or ``X-Robots-Tag: nofollow`` has none of its links followed (whatever
  ``follow_nofollow`` says: that option is about link attributes).
* With ``sitemaps`` every in-scope URL of each listed host's sitemaps is a seed at depth 0.

Exact or not: a parallel crawl decides a URL's depth by whichever page finds it first. The
oracle checks that no order can change a depth: every followed link either goes one level
down, or to a URL that is certainly in the URL-seen store before the linking page is
processed (listed, or admitted by every possible discoverer of an ancestor). The demo's
lists of site-001..site-N pass this check by the graph's construction. When it fails —
sitemap seeds at depth > 0 race the links to the same pages; a partial list with scope
``any`` — and when a budget binds (which URLs win then depends on timing),
``exact`` is False, ``urls`` is an upper bound (every URL any order can request, each with
its order-independent outcome) and ``certain`` the URLs every order requests.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

from workers.demoweb.app import DemoWebConfig
from workers.demoweb.facts import FETCH_TIMEOUT_S, FOLLOWED_OUTCOMES, DemoPages, PageFacts
from workers.demoweb.hosts import DEMO_SUFFIX
from workers.demoweb.kinds import Outcome
from workers.errors import ConfigError
from workers.messages import CrawlContext, Scope
from workers.scope import ScopeRules, child_seed
from workers.urls import InvalidURL, canonicalize, host_of, url_hash

__all__ = [
    "DEMO_EXTRA_SUFFIXES",
    "DemoPages",
    "Expectation",
    "ExpectedURL",
    "PageFacts",
    "expect_crawl",
    "sitemap_urls",
]

DEMO_EXTRA_SUFFIXES: Final = (DEMO_SUFFIX,)
"""Public suffixes to add for the demo web (STREAMCRAWL_DISCOVERY_EXTRA_SUFFIXES): the registered
domain of ``blog.site-001.demo.test`` is ``site-001.demo.test``."""


@dataclass(frozen=True, slots=True)
class ExpectedURL:
    url: str
    host: str
    kind: str
    outcome: Outcome
    reason: str | None
    depth: int
    source: str
    """``list``, ``sitemap`` or ``link``."""
    parent: str | None
    """Canonical URL of a page that discovers it (the first in breadth-first order)."""
    level: int | None

    @property
    def url_hash(self) -> str:
        return url_hash(self.url)


@dataclass(slots=True)
class Expectation:
    scope: Scope
    listed: tuple[str, ...]
    urls: dict[str, ExpectedURL]
    """Every URL a correct crawl requests (an upper bound when not ``exact``)."""
    dropped: dict[str, str]
    """URLs found on followed pages that a correct crawl never requests, with the reason
    (nofollow, out_of_scope, asset, too_deep, excluded, not_included)."""
    certain: frozenset[str]
    """URLs every order requests (== ``urls`` when exact)."""
    exact: bool
    notes: list[str] = field(default_factory=list)
    """Why the answer is not exact."""
    per_host: Counter[str] = field(default_factory=Counter)
    """URLs of ``urls`` per host, before budgets."""

    def _with(self, outcome: str) -> list[ExpectedURL]:
        return [u for u in self.urls.values() if u.outcome == outcome]

    @property
    def stored(self) -> frozenset[str]:
        return frozenset(u.url for u in self._with("stored"))

    @property
    def certain_stored(self) -> frozenset[str]:
        return frozenset(u for u in self.certain if self.urls[u].outcome == "stored")

    @property
    def expected(self) -> int:
        """Pages a correct crawl stores (exact, or the upper bound)."""
        return len(self._with("stored"))

    @property
    def requested(self) -> int:
        return len(self.urls)

    @property
    def discovered(self) -> int:
        return sum(1 for u in self.urls.values() if u.source != "list")

    @property
    def dead_lettered(self) -> Counter[str]:
        return Counter(u.reason or "?" for u in self._with("dead_lettered"))

    @property
    def skipped(self) -> Counter[str]:
        return Counter(u.reason or "?" for u in self._with("skipped"))

    def never_fetched(self) -> frozenset[str]:
        """URLs a correct crawl never fetches: those it never requests, and the robots-disallowed.

        For the crawler's own fetches (filter the access log by its User-Agent): the rich
        path's browser also loads the resources of the pages it renders."""
        robots = {u.url for u in self.urls.values() if u.reason == "robots"}
        return frozenset(self.dropped) | robots

    def summary(self) -> dict[str, object]:
        return {
            "expected": self.expected,
            "requested": self.requested,
            "discovered": self.discovered,
            "dead_lettered": sum(self.dead_lettered.values()),
            "skipped": dict(sorted(self.skipped.items())),
            "exact": self.exact,
        }


@dataclass(slots=True)
class _Seen:
    depth: int
    seed: str
    source: str
    parent: str | None


def _bfs(
    pages: DemoPages, rules: ScopeRules, seeds: list[tuple[str, _Seen]]
) -> tuple[dict[str, _Seen], dict[str, str], dict[str, list[str]]]:
    """Breadth-first discovery from ``seeds``: admitted URLs, dropped links, followed in-edges."""
    seen: dict[str, _Seen] = {}
    for url, entry in seeds:
        seen.setdefault(url, entry)
    dropped: dict[str, str] = {}
    edges: dict[str, list[str]] = defaultdict(list)
    frontier = list(seen)
    max_depth = rules.scope.max_depth
    while frontier:
        following: list[str] = []
        for url in frontier:
            entry = seen[url]
            facts = pages.page(url)
            if not facts.follows_links:
                if facts.outcome in FOLLOWED_OUTCOMES and facts.reason in (None, "noindex"):
                    for link, _ in facts.links:  # a nofollow page: none of its links
                        dropped.setdefault(link, "nofollow")
                continue
            ctx = CrawlContext(depth=entry.depth, seed=entry.seed)
            seed = child_seed(ctx, parent_host=host_of(url), final_host=host_of(facts.final_url))
            for link, nofollow in facts.links:
                if nofollow and not rules.scope.follow_nofollow:
                    dropped.setdefault(link, "nofollow")
                    continue
                reason = rules.reject(link, host_of(link), seed=seed, depth=entry.depth + 1)
                if reason is not None:
                    dropped.setdefault(link, reason)
                    continue
                edges[link].append(url)
                if link not in seen:
                    seen[link] = _Seen(entry.depth + 1, seed, "link", url)
                    following.append(link)
        frontier = [u for u in following if seen[u].depth <= max_depth]
    return seen, {u: r for u, r in dropped.items() if u not in seen}, edges


class _Order:
    """Which followed links could be the first to find a URL, in some processing order."""

    def __init__(self, seen: dict[str, _Seen], edges: dict[str, list[str]], listed: set[str]) -> None:
        self.seen, self.edges, self.listed = seen, edges, listed
        self._linked = {target: set(pages) for target, pages in edges.items()}
        self._known: dict[tuple[str, str], bool] = {}
        self._finders: dict[str, list[str]] = {}

    def known(self, target: str, page: str) -> bool:
        """``target`` is certainly in the URL-seen store when ``page`` is processed."""
        if target in self.listed or target == page:  # a page is in the store before it is read
            return True
        if self.seen[page].source != "link":  # a seed may be processed before anything else
            return False
        key = (target, page)
        if key not in self._known:
            self._known[key] = False  # a cycle proves nothing
            finders = self.finders(page)
            self._known[key] = bool(finders) and all(
                q in self._linked.get(target, ()) or self.known(target, q) for q in finders
            )
        return self._known[key]

    def finders(self, url: str) -> list[str]:
        """Pages that may be the first to find ``url`` (none for a listed URL)."""
        if url in self.listed:
            return []
        if url not in self._finders:
            self._finders[url] = []
            self._finders[url] = [q for q in self.edges.get(url, ()) if not self.known(url, q)]
        return self._finders[url]

    def conflicts(self) -> list[str]:
        notes = []
        for target, entry in self.seen.items():
            for page in self.finders(target):
                if self.seen[page].depth + 1 != entry.depth:
                    notes.append(
                        f"{target} (depth {entry.depth}) may be found first from {page} "
                        f"(depth {self.seen[page].depth})"
                    )
        return notes

    def certain(self, max_depth: int, *, capped_hosts: set[str]) -> set[str]:
        """URLs every order requests: seeds, and URLs a certain page finds at a worst-case depth
        that still follows links. Nothing unlisted on a host whose budget binds is certain."""
        worst = {u: (0 if e.source != "link" else e.depth) for u, e in self.seen.items()}
        order = sorted(self.seen, key=lambda u: self.seen[u].depth)
        changed = True
        while changed:  # worst-case depths only grow, capped at max_depth: a fixpoint
            changed = False
            for url in order:
                for page in self.finders(url):
                    depth = min(max_depth, worst[page] + 1)
                    if depth > worst[url]:
                        worst[url], changed = depth, True
        certain = {
            u
            for u, e in self.seen.items()
            if e.source != "link" and (u in self.listed or host_of(u) not in capped_hosts)
        }
        changed = True
        while changed:
            changed = False
            for url in order:
                if url in certain or host_of(url) in capped_hosts:
                    continue
                if any(p in certain and worst[p] < max_depth for p in self.edges.get(url, ())):
                    certain.add(url)
                    changed = True
        return certain


def expect_crawl(
    listed: Iterable[str],
    scope: Scope | None = None,
    *,
    sitemaps: bool = False,
    config: DemoWebConfig | None = None,
    fetch_timeout_s: float = FETCH_TIMEOUT_S,
    extra_suffixes: Sequence[str] = DEMO_EXTRA_SUFFIXES,
) -> Expectation:
    """The outcome of a correct crawl of ``listed`` (URLs of generated demo sites) in ``scope``.

    ``config`` is the demo server's configuration (link_hosts, slow/stall timings) and
    ``fetch_timeout_s`` the crawler's total timeout per fetch; ``extra_suffixes`` what
    discovery adds to the Public Suffix List (STREAMCRAWL_DISCOVERY_EXTRA_SUFFIXES).
    """
    scope = scope or Scope()
    rules = ScopeRules(scope, extra_suffixes=extra_suffixes)
    pages = DemoPages(config, fetch_timeout_s=fetch_timeout_s)
    listed_urls: dict[str, None] = {}
    for raw in listed:
        try:
            listed_urls[canonicalize(raw, default_scheme="http")] = None
        except InvalidURL as exc:
            raise ConfigError(f"not a demo URL: {raw!r} ({exc})") from exc
    seeds = [(u, _Seen(0, host_of(u), "list", None)) for u in listed_urls]
    sitemap_seeds: list[tuple[str, _Seen]] = []
    sitemap_dropped: dict[str, str] = {}
    if sitemaps:
        for url in listed_urls:
            host = host_of(url)
            for seed in pages.sitemap_seeds(url):
                rejected = rules.reject(seed, host_of(seed), seed=host, depth=0)
                if rejected is not None:
                    sitemap_dropped.setdefault(seed, rejected)
                elif seed not in listed_urls:
                    sitemap_seeds.append((seed, _Seen(0, host, "sitemap", url)))
    seen, dropped, edges = _bfs(pages, rules, seeds + sitemap_seeds)
    for url, reason in sitemap_dropped.items():
        if url not in seen:
            dropped.setdefault(url, reason)
    order = _Order(seen, edges, set(listed_urls))
    notes = order.conflicts()
    per_host = Counter(host_of(u) for u in seen)
    capped: set[str] = set()
    cap = scope.max_pages_per_host
    if cap is not None and any(n > cap for n in per_host.values()):
        capped = {h for h, n in per_host.items() if n > cap}
        notes.append(
            f"max_pages_per_host={cap} binds on {len(capped)} host(s): {', '.join(sorted(capped)[:5])}"
        )
    certain = order.certain(scope.max_depth, capped_hosts=capped) if notes else set(seen)
    if scope.max_pages is not None and len(seen) > scope.max_pages:
        notes.append(f"max_pages={scope.max_pages} binds ({len(seen)} URLs in scope)")
        certain &= set(listed_urls)
    urls = {}
    for url, entry in seen.items():
        facts = pages.page(url)
        urls[url] = ExpectedURL(
            url=url,
            host=host_of(url),
            kind=facts.kind,
            outcome=facts.outcome,
            reason=facts.reason,
            depth=entry.depth,
            source=entry.source,
            parent=entry.parent,
            level=facts.level,
        )
    return Expectation(
        scope=scope,
        listed=tuple(listed_urls),
        urls=urls,
        dropped=dropped,
        certain=frozenset(certain),
        exact=not notes,
        notes=notes,
        per_host=per_host,
    )


def sitemap_urls(
    host: str,
    *,
    port: int,
    mode: str = "host",
    config: DemoWebConfig | None = None,
    extra_suffixes: Sequence[str] = DEMO_EXTRA_SUFFIXES,
) -> frozenset[str]:
    """Canonical URLs a sitemap-seeded crawl (depth 0) of ``host`` stores, with scope ``mode``."""
    expectation = expect_crawl(
        [f"http://{host}:{port}/"],
        Scope(mode=mode, max_depth=0),
        sitemaps=True,
        config=config,
        extra_suffixes=extra_suffixes,
    )
    return expectation.stored
