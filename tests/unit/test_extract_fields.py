"""Fast extractor: metadata fields, links, charset decoding, hashes (small inline HTML)."""

from __future__ import annotations

import pytest

from workers.extract import Extracted, extract
from workers.extract.charset import decode_html, sniff_encoding
from workers.extract.links import Resolver
from workers.extract.metadata import clean_title
from workers.extract.simhash import hamming, simhash
from workers.extract.text import normalise, text_hash, tokens

PROSE = (
    "The committee met on Tuesday to discuss the proposal, which had been delayed twice. "
    "Members raised concerns about the budget, the timeline, and the staffing plan. "
)


def article(head: str = "", body: str = "", *, html_attrs: str = 'lang="en"') -> bytes:
    return (
        f"<!doctype html><html {html_attrs}><head>{head}</head><body>"
        f'<nav><a href="/">Home</a> <a href="/news">News</a></nav>'
        f"<article><h1>Headline</h1>{body}<p>{PROSE * 4}</p><p>{PROSE * 3}</p></article>"
        f"</body></html>"
    ).encode()


def ex(html: bytes | str, url: str = "https://example.com/news/story.html", **kw: str) -> Extracted:
    return extract(html, url=url, **kw)


def test_title_prefers_og_then_json_ld_then_title() -> None:
    ld = '<script type="application/ld+json">{"@type":"NewsArticle","headline":"LD headline"}</script>'
    og = '<meta property="og:title" content="OG title">'
    title = "<title>Plain title of the story | Example Site</title>"
    assert ex(article(og + ld + title)).title == "OG title"
    assert ex(article(ld + title)).title == "LD headline"
    assert ex(article(title)).title == "Plain title of the story"


def test_json_ld_graph_and_name_vs_headline() -> None:
    ld = (
        '<script type="application/ld+json">{"@graph":[{"@type":"WebSite","name":"Site"},'
        '{"@type":"Article","name":"Story name","headline":"Story name"}]}</script>'
    )
    assert ex(article(ld)).title == "Story name"
    broken = '<script type="application/ld+json">{not json</script><title>Fallback title here</title>'
    assert ex(article(broken)).title == "Fallback title here"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("How the committee finally decided | Example News", "How the committee finally decided"),
        ("Four words only here | Site", "Four words only here | Site"),  # <= 4 words: keep it all
        ("Example News - How the committee decided", "Example News - How the committee decided"),
        ("Short | Site", "Short | Site"),  # too few words left: keep the original
        ("Site: A much longer title about the committee", "A much longer title about the committee"),
        ("A title with five words \u2013 Site", "A title with five words"),
    ],
)
def test_clean_title(raw: str, expected: str) -> None:
    assert clean_title(raw, []) == expected


def test_description_lang_canonical_published() -> None:
    head = (
        '<meta name="description" content="  Plain   description ">'
        '<meta property="article:published_time" content="2024-05-01T10:00:00Z">'
        '<link rel="canonical" href="/news/story.html#top">'
    )
    out = ex(article(head))
    assert out.description == "Plain description"
    assert out.lang == "en"
    assert out.canonical_url == "https://example.com/news/story.html"
    assert out.published_time == "2024-05-01T10:00:00Z"
    og = ex(
        article('<meta property="og:description" content="OG desc"><meta name="description" content="x">')
    )
    assert og.description == "OG desc"


def test_language_fallbacks() -> None:
    assert ex(article('<meta property="og:locale" content="fr_FR">', html_attrs="")).lang == "fr-FR"
    assert ex(article(html_attrs=""), content_language="de").lang == "de"
    assert ex(article(html_attrs='lang="not a language!"')).lang is None


def test_published_time_fallbacks() -> None:
    ld = '<script type="application/ld+json">{"@type":"BlogPosting","datePublished":"2023-01-02"}</script>'
    assert ex(article(ld)).published_time == "2023-01-02"
    timed = ex(article(body='<time datetime="2022-03-04T05:06">March 4</time>'))
    assert timed.published_time == "2022-03-04T05:06"
    assert ex(article()).published_time is None


def test_outlinks_are_absolute_deduplicated_http_only() -> None:
    body = (
        '<a href="/a#x">a</a><a href="/a#y">a again</a><a href="b.html">b</a>'
        '<a href="//cdn.example.org/c">c</a><a href="https://other.org/d?q=1">d</a>'
        '<a href="javascript:void(0)">js</a><a href="mailto:x@example.com">m</a>'
        '<a href="#top">top</a><a href="ftp://example.com/f">ftp</a><a href="?page=2">p2</a>'
        '<a href=" ../up.html ">up</a><a>no href</a>'
    )
    out = ex(article(body=body))
    assert out.outlinks == [
        "https://example.com/",
        "https://example.com/news",
        "https://example.com/a",
        "https://example.com/news/b.html",
        "https://cdn.example.org/c",
        "https://other.org/d?q=1",
        "https://example.com/news/story.html?page=2",
        "https://example.com/up.html",
    ]


def test_base_href_and_final_url() -> None:
    body = '<a href="rel.html">r</a>'
    with_base = ex(article('<base href="https://static.example.net/root/">', body))
    assert "https://static.example.net/root/rel.html" in with_base.outlinks
    redirected = extract(article(body=body), url="http://old.example/x", final_url="https://new.example/y/z")
    assert "https://new.example/y/rel.html" in redirected.outlinks


def test_resolver_shapes() -> None:
    r = Resolver("https://example.com/dir/page.html?q=1")
    assert r.resolve("HTTPS://Example.com/x") == "HTTPS://Example.com/x"
    assert r.resolve("//h.org/p") == "https://h.org/p"
    assert r.resolve("/p") == "https://example.com/p"
    assert r.resolve("?x=2") == "https://example.com/dir/page.html?x=2"
    assert r.resolve("./a/../b") == "https://example.com/dir/b"
    assert r.resolve("tel:123") is None
    assert r.resolve("data:text/html,hi") is None
    assert r.resolve("") is None
    assert r.resolve("  /spaced path ") == "https://example.com/spaced%20path"


def test_markdown_has_main_content_not_boilerplate() -> None:
    body = '<p>Intro with <b>bold</b>, <em>em</em> and <a href="/ref">a link</a>.</p>'
    out = ex(article(body=body))
    assert out.markdown.startswith("# Headline")
    assert "**bold**" in out.markdown and "*em*" in out.markdown
    assert "[a link](https://example.com/ref)" in out.markdown
    assert "Home" not in out.markdown and "News](" not in out.markdown
    assert "committee met on Tuesday" in out.text
    assert out.word_count == len(out.text.split())


def test_markdown_structures() -> None:
    body = (
        "<h2>Section</h2><ul><li>one</li><li>two<ol><li>inner</li></ol></li></ul>"
        "<pre>def f():\n    return 1</pre><blockquote><p>quoted words</p></blockquote>"
        "<table><caption>T</caption><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>"
        '<p>Image: <img src="/i.png" alt="An image"></p>'
    )
    md = ex(article(body=body)).markdown
    assert "## Section" in md
    assert "- one\n- two" in md
    assert "    1. inner" in md
    assert "```\ndef f():\n    return 1\n```" in md
    assert "> quoted words" in md
    assert "| a | b |\n| --- | --- |\n| 1 | 2 |" in md
    assert "![An image](https://example.com/i.png)" in md


def test_text_hash_and_simhash() -> None:
    a = ex(article(body="<p>Alpha.</p>"))
    b = ex(article(body="<p>Alpha.</p>").replace(b"<p>Alpha.</p>", b"<p>  ALPHA.   </p>"))
    c = ex(article(body="<p>Completely different words about gardening tomatoes.</p>"))
    assert len(a.text_hash) == 32 and int(a.text_hash, 16) >= 0
    assert a.text_hash == b.text_hash  # case and whitespace do not change the hash
    assert a.text_hash != c.text_hash
    assert 0 <= a.simhash < 2**64
    assert hamming(a.simhash, c.simhash) <= 20  # same prose, one sentence differs
    assert simhash([]) == 0
    assert simhash(["x", "y"]) == simhash(["y", "x"])
    assert hamming(simhash(["apple"] * 5), simhash(["zebra"] * 5)) > 10


def test_normalise_and_tokens() -> None:
    assert normalise("  Caf\u00e9\u00a0 AU\tLait \n") == "café au lait"
    assert tokens("hello world") == ["hello", "world"]
    assert tokens("東京 tower") == ["東", "京", "tower"]
    assert text_hash("x") == text_hash("x")


@pytest.mark.parametrize(
    ("raw", "hints", "encoding"),
    [
        ("café".encode("cp1252"), {"charset": "iso-8859-1"}, "cp1252"),
        ('<meta charset="windows-1251">Привет'.encode("cp1251"), {}, "cp1251"),
        ("caf\u00e9".encode(), {"charset": "iso-8859-1"}, "utf-8"),  # valid UTF-8 wins
        (b"\xef\xbb\xbfplain", {}, "utf-8"),
        ("hi".encode("utf-16"), {}, "utf-16-le"),
        (b"abc", {"charset": "no-such-charset"}, "utf-8"),
        (b"\xe9t\xe9", {"content_type": "text/html; charset=x-nope"}, "utf-8"),
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=gb2312">中'.encode("gbk"),
            {},
            "gb18030",
        ),
    ],
)
def test_charset(raw: bytes, hints: dict[str, str], encoding: str) -> None:
    assert sniff_encoding(raw, **hints) == encoding
    decoded = decode_html(raw, **hints)
    assert decoded.encoding == encoding
    assert isinstance(decoded.text, str)


def test_non_utf8_page_text_is_decoded() -> None:
    html = "<html><body><article><p>Ça coûte très cher, déjà vu.</p></article></body></html>".encode("cp1252")
    out = extract(html, url="https://example.fr/", charset="windows-1252")
    assert "Ça coûte très cher" in out.text
    assert out.encoding == "cp1252"


@pytest.mark.parametrize(
    "html",
    [
        b"",
        b"\x00\xff\xfe",
        b"<",
        b"<html><body>",
        "<p>lone \ud800 surrogate</p>",
        b"<p>" * 5000,
        b"\x89PNG\r\n",
    ],
)
def test_malformed_input_never_raises(html: bytes | str) -> None:
    out = extract(html, url="https://example.com/")
    assert isinstance(out.markdown, str)
    assert 0 <= out.simhash < 2**64
