"""Crawl-loop signals from a page: robots directives, nofollow links; language; plain text."""

from __future__ import annotations

import pytest

from bench.quality import load_readability
from workers.demoweb.graph import article_path
from workers.demoweb.hosts import demo_host
from workers.demoweb.pages import render_path
from workers.demoweb.site import Origin, site_profile
from workers.extract import extract
from workers.extract.language import detect_language
from workers.extract.robots import directives, product_token


@pytest.mark.parametrize(
    ("meta", "headers", "expected"),
    [
        (["noindex, follow"], [], ["noindex"]),
        (["NONE"], [], ["nofollow", "noindex"]),
        (["all"], ["index, follow"], []),
        ([], ["streamcrawl: noindex"], ["noindex"]),
        ([], ["googlebot: noindex", "otherbot: nofollow, noarchive"], []),
        ([], ["noarchive, googlebot: noindex, nosnippet"], ["noarchive"]),
        ([], ["unavailable_after: 25 Jun 2030 15:00:00 PST"], ["unavailable_after:25 jun 2030 15:00:00 pst"]),
        (["max-snippet:50, nofollow"], ["streamcrawl: none"], ["max-snippet:50", "nofollow", "noindex"]),
    ],
)
def test_robots_directives_that_apply_to_us(meta: list[str], headers: list[str], expected: list[str]) -> None:
    assert directives(meta=meta, headers=headers, token="streamcrawl") == expected


def test_product_token() -> None:
    assert product_token("StreamCrawl/0.1 (+https://example.org)") == "streamcrawl"


def test_robots_metas_and_headers_of_a_page() -> None:
    html = (
        b'<html><head><meta name="Robots" content="noarchive"><meta name="StreamCrawl" content="nofollow">'
        b'<meta name="googlebot" content="noindex"></head><body><p>x</p></body></html>'
    )
    out = extract(html, url="http://a.test/", x_robots_tags=["streamcrawl: noindex"])
    assert out.robots == ["noarchive", "nofollow", "noindex"]


def test_nofollow_links_are_a_subset_of_the_outlinks() -> None:
    html = b"""<html><body>
      <a href="/a#top">a</a> <a href="/b" rel="nofollow">b</a> <a href="/c" rel="external UGC">c</a>
      <a href="/d" rel="sponsored">d</a> <a href="/d">d again, followed</a> <a href="/a">a again</a>
      <a href="mailto:x@y.z">mail</a> <area href="/e" rel="nofollow">
    </body></html>"""
    out = extract(html, url="http://a.test/x")
    base = "http://a.test"
    assert out.outlinks == [f"{base}/a", f"{base}/b", f"{base}/c", f"{base}/d", f"{base}/e"]
    assert out.outlinks_nofollow == [f"{base}/b", f"{base}/c", f"{base}/e"]
    assert out.outlinks_total == 5


def test_outlink_cap_keeps_the_first_links_and_counts_all() -> None:
    html = ("<html><body>" + "".join(f'<a href="/p{i}">p</a>' for i in range(50)) + "</body></html>").encode()
    out = extract(html, url="http://a.test/", max_outlinks=10)
    assert out.outlinks == [f"http://a.test/p{i}" for i in range(10)]
    assert out.outlinks_total == 50


def test_language_of_demo_articles() -> None:
    seen = set()
    for index in range(1, 80):
        host = demo_host(index)
        profile = site_profile(host)
        out = extract(render_path(Origin(host, "", 10), article_path(1, 1, 1)), url=f"http://{host}/")
        assert out.language == profile.lang, host
        assert out.language_score is not None and out.language_score > 0.5
        seen.add(profile.lang)
    assert {"en", "de", "fr", "es"} <= seen


def test_language_of_real_pages() -> None:
    cases = [c for c in load_readability() if isinstance(c.metadata.get("lang"), str)]
    if not cases:
        pytest.skip("readability test pages (../shared/data) not available")
    by_name = {c.name: c for c in cases}
    for name, lang in (("lemonde-1", "fr"), ("qq", "zh"), ("nytimes-1", "en")):
        if name in by_name:
            assert extract(by_name[name].source, url="http://fakehost/").language == lang
    hits = sum(
        extract(c.source, url="http://fakehost/").language == str(c.metadata["lang"]).split("-")[0].lower()
        for c in cases
    )
    assert hits / len(cases) >= 0.9


def test_language_never_raises() -> None:
    assert detect_language("").language is None
    assert detect_language("1234 5678").language is None
    assert (
        detect_language(
            "bad \udc80 surrogate and \x01 control, and some English words in a sentence"
        ).language
        == "en"
    )


def test_plain_text_has_the_markdown_blocks_without_markup() -> None:
    html = b"""<html><body><article><h2>Heading</h2>
      <p>First <b>bold</b> paragraph with <a href="/l">a link</a>, commas, and enough words to count.</p>
      <ul><li>one</li><li>two</li></ul><blockquote><p>A quote, quoted.</p></blockquote>
      <p><img src="/i.png" alt="picture"></p></article></body></html>"""
    out = extract(html, url="http://a.test/")
    assert "## Heading" in out.markdown and "[a link](http://a.test/l)" in out.markdown
    assert out.text.split("\n\n")[:2] == [
        "Heading",
        "First bold paragraph with a link, commas, and enough words to count.",
    ]
    assert "one\ntwo" in out.text and "A quote, quoted." in out.text
    assert not any(mark in out.text for mark in ("**", "](", "![", "> ", "- one"))
