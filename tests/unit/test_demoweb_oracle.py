"""The crawl oracle: the semantics it promises, and agreement with discovery in random orders."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from workers.demoweb.app import DemoWebConfig
from workers.demoweb.hosts import demo_host
from workers.demoweb.oracle import DEMO_EXTRA_SUFFIXES, DemoPages, Expectation, expect_crawl, sitemap_urls
from workers.demoweb.shape import site_shape
from workers.demoweb.site import site_profile
from workers.errors import ConfigError
from workers.messages import CrawlContext, Scope
from workers.scope import ScopeRules, child_seed
from workers.urls import host_of

PORT = 8080
PAGES = DemoPages()  # shared: page facts are pure, the simulation reuses them


def _homes(n: int, start: int = 1) -> list[str]:
    return [f"http://{demo_host(i)}:{PORT}/" for i in range(start, start + n)]


def _url(host: str, path: str) -> str:
    return f"http://{host}:{PORT}{path}"


def simulate(
    listed: list[str], scope: Scope, rng: random.Random, *, sitemaps: bool = False
) -> dict[str, int]:
    """Discovery as the daemon does it, processing pages in a random order: URL -> depth.

    Listed URLs are in the URL-seen store first; a processed page inserts all its admitted
    links at once; each host's sitemap seeds arrive at a random moment; budgets are checked
    at insertion, so which URLs win depends on the order.
    """
    rules = ScopeRules(scope, extra_suffixes=DEMO_EXTRA_SUFFIXES)
    seen: dict[str, tuple[int, str]] = {}
    per_host: Counter[str] = Counter()
    pending: list[str] = []

    def admit(url: str, depth: int, seed: str) -> None:
        if url in seen:
            return
        host = host_of(url)
        if scope.max_pages_per_host is not None and per_host[host] >= scope.max_pages_per_host:
            return
        if scope.max_pages is not None and len(seen) >= scope.max_pages:
            return
        seen[url] = (depth, seed)
        per_host[host] += 1
        pending.append(url)

    for url in listed:
        admit(url, 0, host_of(url))
    waiting = [url for url in listed] if sitemaps else []
    while pending or waiting:
        if waiting and (not pending or rng.random() < 0.2):
            listed_url = waiting.pop(rng.randrange(len(waiting)))
            for seed in PAGES.sitemap_seeds(listed_url):
                if rules.reject(seed, host_of(seed), seed=host_of(listed_url), depth=0) is None:
                    admit(seed, 0, host_of(listed_url))
            continue
        url = pending.pop(rng.randrange(len(pending)))
        depth, seed = seen[url]
        facts = PAGES.page(url)
        if not facts.follows_links or not rules.follows_links(depth):
            continue
        link_seed = child_seed(
            CrawlContext(depth=depth, seed=seed),
            parent_host=host_of(url),
            final_host=host_of(facts.final_url),
        )
        for link, nofollow in facts.links:
            if nofollow and not scope.follow_nofollow:
                continue
            if rules.reject(link, host_of(link), seed=link_seed, depth=depth + 1) is None:
                admit(link, depth + 1, link_seed)
    return {url: depth for url, (depth, _) in seen.items()}


def _depths(expectation: Expectation) -> dict[str, int]:
    return {url: u.depth for url, u in expectation.urls.items()}


@pytest.mark.parametrize(
    ("sites", "scope"),
    [
        (4, Scope(mode="host", max_depth=3)),
        (4, Scope(mode="domain", max_depth=3)),
        (3, Scope(mode="any", max_depth=4)),
        (6, Scope(mode="domain", max_depth=2, follow_nofollow=True)),
        (4, Scope(mode="domain", max_depth=3, exclude=["/calendar/"], include=["site-00[1-3]"])),
    ],
)
def test_oracle_equals_discovery_in_any_order(sites: int, scope: Scope) -> None:
    listed = _homes(sites)
    expectation = expect_crawl(listed, scope)
    assert expectation.exact, expectation.notes[:3]
    assert expectation.certain == frozenset(expectation.urls)
    for trial in range(25):
        assert simulate(listed, scope, random.Random(trial)) == _depths(expectation), trial


def test_sitemap_seeding_at_depth_0_is_exact_and_at_depth_2_bounded() -> None:
    listed = _homes(2, start=3)
    exact = expect_crawl(listed, Scope(mode="domain", max_depth=0), sitemaps=True)
    assert exact.exact
    for trial in range(10):
        assert simulate(listed, exact.scope, random.Random(trial), sitemaps=True) == _depths(exact)
    racy = expect_crawl(listed, Scope(mode="domain", max_depth=2), sitemaps=True)
    assert not racy.exact and any("may be found first" in n for n in racy.notes)
    for trial in range(40):
        got = simulate(listed, racy.scope, random.Random(trial), sitemaps=True)
        assert racy.certain <= set(got) <= set(racy.urls), trial
        assert all(racy.urls[u].depth <= d for u, d in got.items())  # the oracle's depth is the minimum
    assert len(racy.certain) < len(racy.urls)


def test_budgets_bound_what_any_order_admits() -> None:
    host = next(demo_host(i) for i in range(1, 40) if site_shape(demo_host(i), link_hosts=60).calendar_daily)
    scope = Scope(mode="domain", max_depth=3, max_pages_per_host=200)
    expectation = expect_crawl([_url(host, "/")], scope)
    assert not expectation.exact and "max_pages_per_host=200" in expectation.notes[-1]
    assert expectation.per_host[host] > 200  # the trap would go on: the budget stops it
    for trial in range(15):
        got = simulate([_url(host, "/")], scope, random.Random(trial))
        assert set(got) <= set(expectation.urls) and expectation.certain <= set(got)
        counts = Counter(host_of(u) for u in got)
        assert counts[host] == 200
        assert all(expectation.urls[u].depth == d for u, d in got.items())
    capped = expect_crawl(_homes(3), Scope(mode="host", max_depth=2, max_pages=50))
    assert not capped.exact and len(simulate(_homes(3), capped.scope, random.Random(1))) == 50


def test_a_partial_list_in_scope_any_is_flagged_as_order_dependent() -> None:
    listed = _homes(1, start=9)
    assert expect_crawl(listed, Scope(mode="any", max_depth=2)).exact  # the home reaches every partner first
    expectation = expect_crawl(listed, Scope(mode="any", max_depth=3))
    # partner homes (unlisted site-001..008) link each other: a partner processed early finds another one
    assert not expectation.exact and "may be found first" in expectation.notes[0]
    outcomes = set()
    for trial in range(20):
        got = simulate(listed, expectation.scope, random.Random(trial))
        assert expectation.certain <= set(got) <= set(expectation.urls)
        outcomes.add(frozenset(got))
    assert len(outcomes) > 1


def test_robots_directives_and_nofollow_in_one_site() -> None:
    host = next(demo_host(i) for i in range(1, 40) if site_profile(demo_host(i)).disallow_private)
    expectation = expect_crawl([_url(host, "/")], Scope(mode="host", max_depth=2))
    urls, dropped = expectation.urls, expectation.dropped
    assert (urls[_url(host, "/noindex/1")].outcome, urls[_url(host, "/noindex/1")].reason) == (
        "skipped",
        "noindex",
    )
    assert urls[_url(host, "/x-robots/noindex")].reason == "noindex"
    assert urls[_url(host, "/none/1")].reason == "noindex"
    for child in ("/noindex/1/1", "/noindex/1/2", "/x-robots/noindex/1"):  # noindex pages' links are followed
        assert urls[_url(host, child)].outcome == "stored"
    for child in ("/none/1/1", "/nofollow/1/2", "/x-robots/nofollow/1"):  # nofollow pages' are not
        assert dropped[_url(host, child)] == "nofollow"
    assert urls[_url(host, "/nofollow/1")].outcome == "stored"
    assert urls[_url(host, "/x-robots/nofollow")].outcome == "stored"
    assert (
        dropped[_url(host, "/sponsored/1")] == "nofollow"
        and dropped[_url(host, "/sponsored/2")] == "nofollow"
    )
    assert (urls[_url(host, "/private/1")].outcome, urls[_url(host, "/private/1")].reason) == (
        "skipped",
        "robots",
    )
    assert urls[_url(host, "/admin/")].reason == "robots"
    assert _url(host, "/private/1") in expectation.never_fetched()
    assert dropped[f"http://blog.{host}:{PORT}/"] == "out_of_scope"
    assert dropped[_url(host, "/files/1.pdf")] == "asset"
    assert not any("utm_" in u or "fbclid" in u or "#" in u for u in urls)
    assert "too_deep" in dropped.values()

    followed = expect_crawl([_url(host, "/")], Scope(mode="host", max_depth=2, follow_nofollow=True))
    assert followed.urls[_url(host, "/sponsored/1")].outcome == "stored"
    assert followed.dropped[_url(host, "/nofollow/1/1")] == "nofollow"  # page-level nofollow still holds


def test_host_and_domain_scopes_differ_by_the_blog() -> None:
    listed = _homes(5)
    by_host = expect_crawl(listed, Scope(mode="host", max_depth=2))
    by_domain = expect_crawl(listed, Scope(mode="domain", max_depth=2))
    extra = set(by_domain.urls) - set(by_host.urls)
    assert extra and all(host_of(u).startswith("blog.") for u in extra)
    assert set(by_host.urls) < set(by_domain.urls)
    depth0 = expect_crawl(listed, Scope(max_depth=0))
    assert depth0.expected == 5 and depth0.discovered == 0


def test_sitemap_urls_of_a_host() -> None:
    host = demo_host(3)
    by_host = sitemap_urls(host, port=PORT)
    by_domain = sitemap_urls(host, port=PORT, mode="domain")
    assert by_domain - by_host == {f"http://blog.{host}:{PORT}/"}
    assert _url(host, "/article/1") in by_host  # linked from no page: only a sitemap crawl finds it
    assert _url(host, "/noindex/1") not in by_host  # listed but noindex: skipped, not stored
    assert not any(u.endswith(".pdf") or "utm_" in u for u in by_host)
    crawl = expect_crawl([_url(host, "/")], Scope(mode="host", max_depth=3))
    assert _url(host, "/article/1") not in crawl.urls


def test_expectation_counts_follow_the_outcome_table() -> None:
    expectation = expect_crawl(_homes(20), Scope(mode="domain", max_depth=2))
    summary = expectation.summary()
    assert summary["expected"] == len(expectation.stored) == expectation.expected
    assert expectation.requested == expectation.expected + sum(expectation.skipped.values()) + sum(
        expectation.dead_lettered.values()
    )
    assert expectation.discovered == expectation.requested - 20
    assert {"http_404", "http_500", "too_many_redirects", "http_429"} <= set(expectation.dead_lettered)
    assert {"noindex", "robots", "non_html"} <= set(expectation.skipped)
    assert 1000 < expectation.requested < 2000


def test_slow_pages_time_out_by_the_server_config_and_the_crawler_timeout() -> None:
    slow, stall = _url(demo_host(1), "/slow/3"), _url(demo_host(1), "/stall/2")
    timeout = _url(demo_host(1), "/slow/4?delay=13")
    default = expect_crawl([slow, stall, timeout], Scope(), fetch_timeout_s=8)
    assert [default.urls[u].outcome for u in (slow, stall, timeout)] == [
        "stored",
        "dead_lettered",
        "dead_lettered",
    ]
    assert default.urls[timeout].reason == default.urls[stall].reason == "timeout"
    patient = expect_crawl(
        [slow, stall, timeout], Scope(), config=DemoWebConfig(stall_max_s=4), fetch_timeout_s=20
    )
    assert [patient.urls[u].outcome for u in (slow, stall, timeout)] == ["stored", "stored", "stored"]


def test_only_generated_demo_sites_are_known() -> None:
    with pytest.raises(ConfigError, match="generated demo sites"):
        expect_crawl(["http://readability.demo.test:8080/"], Scope(max_depth=1))
    with pytest.raises(ConfigError, match="generated demo sites"):
        expect_crawl(["https://example.com/"], Scope(max_depth=1))
