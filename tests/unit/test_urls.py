"""One canonicalisation for every path: a table of tricky URLs, refusals and idempotence."""

from __future__ import annotations

import pytest

from workers.urls import InvalidURL, canonicalize, host_of, normalize_url, url_hash

CANONICAL = [
    # (input, canonical)
    ("http://Bücher.DE:80/a/./b/../c?b=2&a=1#frag", "http://xn--bcher-kva.de/a/c?a=1&b=2"),
    ("bücher.de", "https://xn--bcher-kva.de/"),
    ("xn--bcher-kva.de", "https://xn--bcher-kva.de/"),
    ("https://example.com:443", "https://example.com/"),
    ("https://example.com:8443/x", "https://example.com:8443/x"),
    ("http://example.com:443/", "http://example.com:443/"),
    ("HTTP://EXAMPLE.com/%7euser/a%2fb?q=a b", "http://example.com/~user/a%2Fb?q=a+b"),
    ("http://[::1]:8080/x", "http://[::1]:8080/x"),
    ("http://[2001:DB8::1]/", "http://[2001:db8::1]/"),
    ("http://example.com/?utm_source=x&id=3&fbclid=abc", "http://example.com/?id=3"),
    ("http://example.com/?UTM_Campaign=x", "http://example.com/"),
    ("http://example.com/a?", "http://example.com/a"),
    ("http://example.com/café", "http://example.com/caf%C3%A9"),
    ("http://example.com/caf%c3%a9", "http://example.com/caf%C3%A9"),
    ("http://user:pw@Example.com./", "http://example.com/"),
    ("example.com:8080/x", "https://example.com:8080/x"),
    ("//example.com/x", "https://example.com/x"),
    ("https://example.com/a?b=1&a=2&a=1", "https://example.com/a?a=1&a=2&b=1"),
    ("http://192.168.0.1:80/", "http://192.168.0.1/"),
    ("http://example.com/a b", "http://example.com/a%20b"),
    ("http://example.com/a/", "http://example.com/a/"),
    ("http://example.com", "http://example.com/"),
    ("  http://example.com/\n", "http://example.com/"),
    ("http://exa\tmple.com/", "http://example.com/"),
    ("http://_dmarc.example.com/", "http://_dmarc.example.com/"),
]

REFUSED = [
    ("mailto:me@x.org", "non-HTTP(S) scheme 'mailto'"),
    ("ftp://x.org/robots.txt", "non-HTTP(S) scheme 'ftp'"),
    ("javascript:alert(1)", "non-HTTP(S) scheme 'javascript'"),
    ("http://[::1", "malformed URL"),
    ("http://exa mple.com/", "invalid host"),
    ("http://example.com:99999/", "malformed URL"),
    ("http://a..b/", "invalid host"),
    ("6;site-006.demo.test", "invalid host"),
    ("http:///path", "no host"),
    ("", "empty URL"),
    ("http://x.org/\x00", "NUL"),
]


@pytest.mark.parametrize(("raw", "expected"), CANONICAL)
def test_canonical_forms(raw: str, expected: str) -> None:
    assert canonicalize(raw, default_scheme="https") == expected
    assert canonicalize(expected) == expected  # idempotent


@pytest.mark.parametrize(("raw", "reason"), REFUSED)
def test_refusals_name_the_problem(raw: str, reason: str) -> None:
    with pytest.raises(InvalidURL, match=reason.replace("(", r"\(").replace(")", r"\)")):
        canonicalize(raw, default_scheme="https")


def test_scheme_less_input_needs_a_default_scheme() -> None:
    with pytest.raises(InvalidURL, match="no scheme"):
        canonicalize("example.com")
    assert canonicalize("example.com", default_scheme="http") == "http://example.com/"


def test_one_hash_for_spellings_of_one_url() -> None:
    spellings = [["5", "bücher.de"][1], "https://BÜCHER.de", "https://xn--bcher-kva.de:443/#top"]
    assert len({url_hash(normalize_url(s)) for s in spellings}) == 1
    assert host_of(normalize_url("https://BÜCHER.de/x")) == "xn--bcher-kva.de"


@pytest.mark.parametrize("seed", range(3))
def test_canonicalize_is_idempotent_on_generated_urls(seed: int) -> None:
    from hypothesis import given, settings
    from hypothesis import strategies as st

    segment = st.text(alphabet="abcXYZ019-._~%/é ?=&#+", max_size=12)
    host = st.sampled_from(["Example.COM", "bücher.de", "a.b.c", "[::1]", "x.org.", "127.0.0.1"])
    port = st.sampled_from(["", ":80", ":443", ":8080"])

    @settings(max_examples=200, deadline=None, database=None)
    @given(st.sampled_from(["http", "https", "HTTP"]), host, port, segment, segment)
    def check(scheme: str, h: str, p: str, path: str, query: str) -> None:
        try:
            once = canonicalize(f"{scheme}://{h}{p}/{path}?{query}")
        except InvalidURL:
            return
        assert canonicalize(once) == once

    check()
