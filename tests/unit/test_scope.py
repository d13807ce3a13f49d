from __future__ import annotations

import pytest

from workers.errors import ConfigError
from workers.messages import CrawlContext, Scope
from workers.scope import ScopeRules, child_seed, registered_domain, validate_scope


def test_registered_domain_uses_the_bundled_public_suffix_list() -> None:
    assert registered_domain("www.bbc.co.uk") == "bbc.co.uk"
    assert registered_domain("a.b.github.io") == "b.github.io"  # private suffixes count
    assert registered_domain("127.0.0.1") == "127.0.0.1"
    assert registered_domain("www.site-001.demo.test", extra_suffixes=["demo.test"]) == "site-001.demo.test"


@pytest.mark.parametrize(
    ("mode", "url", "host", "verdict"),
    [
        ("host", "https://www.example.com/a", "www.example.com", None),
        ("host", "https://blog.example.com/a", "blog.example.com", "out_of_scope"),
        ("domain", "https://blog.example.com/a", "blog.example.com", None),
        ("domain", "https://example.org/a", "example.org", "out_of_scope"),
        ("any", "https://example.org/a", "example.org", None),
        ("any", "https://example.org/logo.PNG", "example.org", "asset"),
        ("any", "https://example.org/app.js?v=3", "example.org", "asset"),
    ],
)
def test_scope_modes(mode: str, url: str, host: str, verdict: str | None) -> None:
    rules = ScopeRules(Scope(mode=mode, max_depth=3))
    assert rules.reject(url, host, seed="www.example.com", depth=1) == verdict


def test_depth_and_patterns() -> None:
    rules = ScopeRules(Scope(mode="any", max_depth=2, include=[r"/news/"], exclude=[r"/news/archive"]))
    seed = "example.com"
    assert rules.reject("https://example.com/news/1", seed, seed=seed, depth=3) == "too_deep"
    assert rules.reject("https://example.com/news/1", seed, seed=seed, depth=2) is None
    assert rules.reject("https://example.com/about", seed, seed=seed, depth=1) == "not_included"
    assert rules.reject("https://example.com/news/archive/2", seed, seed=seed, depth=1) == "excluded"
    assert rules.follows_links(1) and not rules.follows_links(2)


def test_validation_names_the_option() -> None:
    with pytest.raises(ConfigError, match="--include"):
        validate_scope(Scope(include=["("]))
    with pytest.raises(ConfigError, match="scope must be one of"):
        validate_scope(Scope(mode="planet"))
    with pytest.raises(ConfigError, match="max pages per host"):
        validate_scope(Scope(max_pages_per_host=0))


def test_a_listed_page_that_redirects_moves_the_seed() -> None:
    assert (
        child_seed(
            CrawlContext(depth=0, seed="example.com"), parent_host="example.com", final_host="www.example.com"
        )
        == "www.example.com"
    )
    assert (
        child_seed(
            CrawlContext(depth=1, seed="www.example.com"),
            parent_host="www.example.com",
            final_host="cdn.example.com",
        )
        == "www.example.com"
    )
