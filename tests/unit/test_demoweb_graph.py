"""The demo web's site tree: the shape that makes a crawl's depths order-independent, and
served pages that carry exactly the graph's links."""

from __future__ import annotations

import functools
from collections import Counter
from urllib.parse import urljoin, urlsplit

import pytest
from selectolax.lexbor import LexborHTMLParser

from workers.demoweb import graph, pages
from workers.demoweb.hosts import demo_host
from workers.demoweb.kinds import KINDS
from workers.demoweb.shape import MAX_FAILING, site_shape
from workers.demoweb.site import Origin
from workers.extract.links import Resolver, base_url, outlinks
from workers.scope import ASSET_EXTENSIONS
from workers.urls import InvalidURL, canonicalize

PORT = ":8080"
SITES = 20  # enough for every special kind's rotation slot (site 15 has the rare ones)
MAX_LEVEL = 4  # the calendar is infinite: walk the tree this deep
HOMES = {f"http://{demo_host(i)}{PORT}/" for i in range(1, SITES + 1)}


def _origin(host: str) -> Origin:
    return Origin(host, PORT, 60)


@functools.cache
def _node_of(url: str) -> graph.Node:
    parts = urlsplit(url)
    return graph.node(_origin(parts.hostname or ""), parts.path or "/")


@functools.cache
def _targets(url: str) -> list[tuple[str, bool]]:
    """(canonical target, rel=nofollow) of every followable link, resolved as the extractor does."""
    page = _node_of(url)
    final = urljoin(url, page.final_path) if page.final_path else url
    resolver = Resolver(urljoin(final, page.base_href) if page.base_href else final)
    out = []
    for link in page.links:
        resolved = resolver.resolve(link.href)
        if resolved is None:
            continue
        try:
            target = canonicalize(resolved)
        except InvalidURL:
            continue
        name = urlsplit(target).path.rsplit("/", 1)[-1]
        if "." in name and name.rsplit(".", 1)[1] in ASSET_EXTENSIONS:
            continue  # discovery drops assets before they are requested
        out.append((target, "nofollow" in (link.rel or "").split()))
    return out


def _url(host: str, path: str) -> str:
    return f"http://{host}{PORT}{path}"


def _ancestors(url: str) -> list[str]:
    out = []
    page = _node_of(url)
    while page.parent is not None:
        url = _url(*page.parent)
        out.append(url)
        page = _node_of(url)
    return out


@pytest.fixture(scope="module")
def tree() -> dict[str, graph.Node]:
    """Every tree page of site-001..site-040 (and their blogs) down to MAX_LEVEL, by canonical URL."""
    found: dict[str, graph.Node] = {}
    frontier = sorted(HOMES)
    while frontier:
        following = []
        for url in frontier:
            page = _node_of(url)
            found[url] = page
            if page.level is None or page.level >= MAX_LEVEL:
                continue
            for target, _ in _targets(url):
                if target not in found and target not in following and _node_of(target).level is not None:
                    following.append(target)
        frontier = following
    return found


def test_every_link_goes_one_level_down_to_a_child_or_up_to_an_ancestor(tree: dict[str, graph.Node]) -> None:
    """The property that makes BFS depth == tree level in any processing order."""
    checked = 0
    for url, page in tree.items():
        assert page.level is not None, url
        if page.level >= MAX_LEVEL:
            continue
        ancestors = set(_ancestors(url))
        assert len(ancestors) == page.level, url  # one parent per level, up to the home page
        for target, _ in _targets(url):
            target_node = _node_of(target)
            checked += 1
            assert target_node.level is not None, f"{url} links {target}, a page outside the tree"
            if target_node.level == page.level + 1:
                assert target_node.parent is not None and _url(*target_node.parent) == url, (url, target)
            else:
                assert target_node.level <= page.level, (url, target)
                assert target == url or target in ancestors or target in HOMES, (url, target)
    assert checked > 10_000


def test_the_tree_has_every_feature_the_crawl_loop_needs(tree: dict[str, graph.Node]) -> None:
    kinds = Counter(page.kind for page in tree.values())
    for kind in ("home", "section", "section_page", "article", "calendar_month", "calendar_day"):
        assert kinds[kind] >= SITES, kind
    for kind in (
        "blog_home",
        "noindex",
        "robots_none",
        "meta_nofollow",
        "x_robots_noindex",
        "x_robots_nofollow",
    ):
        assert kinds[kind] == SITES, kind
    for kind, spec in KINDS.items():  # every listed special kind is linked from some listing
        if spec.listed and kind not in ("timeout", "pdf", "json", "image", "listing"):
            assert kinds[kind] >= 1, kind
    assert kinds["robots_blocked"] >= 5 and kinds["private_page"] >= 5
    hosts = {urlsplit(u).hostname for u in tree}
    assert {f"blog.{demo_host(i)}" for i in range(1, SITES + 1)} <= hosts


def test_failing_pages_per_site_stay_under_the_breaker() -> None:
    for i in range(1, 100):
        shape = site_shape(demo_host(i), link_hosts=60)
        assert sum(KINDS[s.kind].failing for s in shape.specials) <= MAX_FAILING
        assert all(j < i for j in shape.partners)


def test_the_trap_is_infinite() -> None:
    host = demo_host(4)
    url = next(_url(host, link.href) for link in _node_of(_url(host, "/")).links if "/calendar/" in link.href)
    for _ in range(200):  # 200 months down, still a next month one level deeper
        page = _node_of(url)
        months = [t for t, _ in _targets(url) if urlsplit(t).path.count("-") == 1]
        nxt = max(months)
        assert _node_of(nxt).level == (page.level or 0) + 1
        url = nxt
    assert _node_of(url).level == 201 and _node_of(url).kind == "calendar_month"


@pytest.mark.parametrize("host", [demo_host(3), demo_host(4), f"blog.{demo_host(5)}"])
def test_served_html_carries_exactly_the_graph_links(host: str, tree: dict[str, graph.Node]) -> None:
    urls = [u for u in tree if urlsplit(u).hostname == host and tree[u].template != "special"]
    assert len(urls) > 5
    for url in urls:
        page = tree[url]
        html = pages.render(_origin(host), page)
        parsed = LexborHTMLParser(html)
        final = urljoin(url, page.final_path) if page.final_path else url
        resolver = Resolver(base_url(parsed, final))
        expected = {}
        for link in page.links:
            resolved = Resolver(urljoin(final, page.base_href) if page.base_href else final).resolve(
                link.href
            )
            if resolved is not None:
                expected[resolved] = expected.get(resolved, True) and "nofollow" in (link.rel or "").split()
        links = outlinks(parsed, resolver)
        assert set(links.urls) == set(expected), url
        # The extractor marks a URL nofollow when every link to it is nofollow (or ugc/sponsored).
        assert set(links.nofollow) == {u for u, nf in expected.items() if nf}, url


def test_duplicates_collapse_under_canonicalisation() -> None:
    host = demo_host(7)
    home = _node_of(_url(host, "/"))
    raw = {link.href for link in home.links}
    assert any("utm_source" in h for h in raw) and any("fbclid" in h for h in raw)
    assert any("#" in h and not h.startswith("#") for h in raw)
    assert any(host.upper() in h for h in raw)
    targets = [t for t, _ in _targets(_url(host, "/"))]
    assert len(targets) > len(set(targets))  # several hrefs, one URL
