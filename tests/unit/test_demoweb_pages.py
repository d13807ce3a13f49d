"""Generated demo pages: deterministic, realistic enough, and awkward where intended."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
import zlib

import pytest

from workers.demoweb import pages, spa, special
from workers.demoweb.graph import article_path
from workers.demoweb.site import Origin, robots_txt, site_profile

ORIGIN = Origin("site-007.demo.test", ":8080", 60)
PROFILE = site_profile("site-007.demo.test")
ARTICLE = article_path(1, 1, 3)


def test_same_host_and_path_give_the_same_bytes() -> None:
    first = pages.render_path(ORIGIN, ARTICLE)
    site_profile.cache_clear()
    assert pages.render_path(ORIGIN, ARTICLE) == first
    assert first != pages.render_path(ORIGIN, article_path(1, 1, 2))
    other = Origin("site-008.demo.test", ":8080", 60)
    assert pages.render_path(other, ARTICLE) != first


def test_article_has_the_metadata_an_extractor_needs() -> None:
    html = pages.render_path(ORIGIN, ARTICLE).decode()
    title = pages.page_title(PROFILE, ARTICLE)
    assert f'<html lang="{PROFILE.lang}">' in html
    assert f'<meta property="og:title" content="{title}"' in html.replace("&#x27;", "'")
    assert '<meta name="description" content="' in html
    assert f'<link rel="canonical" href="http://site-007.demo.test:8080{ARTICLE}">' in html
    assert 'property="article:published_time"' in html
    assert '"@type": "NewsArticle"' in html
    assert "<h1>" in html and html.count("<p>") >= 10
    assert "<nav" in html and "<footer" in html and 'class="breadcrumb"' in html
    assert 'href="/section/1"' in html  # breadcrumb to its section
    assert re.search(r'href="http://site-(?!007)\d{3}\.demo\.test:8080/"', html)  # partner homes


def test_article_sizes_are_realistic() -> None:
    sizes = [len(pages.render_path(ORIGIN, f"/article/{n}")) for n in range(1, 30)]
    assert min(sizes) > 8_000 and max(sizes) < 60_000
    text = re.sub(r"<[^>]+>", " ", pages.render_path(ORIGIN, "/article/1").decode())
    assert len(text.split()) > 300


def test_some_static_articles_carry_framework_markers_but_keep_their_text() -> None:
    profile = next(
        p
        for p in (site_profile(f"site-{i:03d}.demo.test") for i in range(1, 60))
        if p.framework_share >= 0.25
    )
    paths = [f"/article/{n}" for n in range(1, 40)]
    marked = [p for p in paths if pages.is_framework_article(profile, p)]
    assert marked and len(marked) < len(paths)
    html = pages.render_path(Origin(profile.host, ":8080", 60), marked[0]).decode()
    assert "__NEXT_DATA__" in html and "data-reactroot" in html and ".bundle.js" in html
    assert html.count("<p>") >= 10


def test_listings_tease_their_articles_and_the_home_page_its_sections() -> None:
    html = pages.render_path(ORIGIN, "/section/1").decode()
    assert html.count('class="teaser"') >= 5 and html.count('href="/article/1') >= 4
    home = pages.render_path(ORIGIN, "/").decode()
    assert 'href="/section/1"' in home and 'href="/calendar/' in home and "blog.site-007" in home
    assert 'rel="nofollow"' in home


def test_robots_pages_carry_their_directives() -> None:
    assert b'<meta name="robots" content="noindex">' in pages.render_path(ORIGIN, "/noindex/1")
    assert b'<meta name="robots" content="none">' in pages.render_path(ORIGIN, "/none/1")
    assert b'<meta name="robots" content="nofollow">' in pages.render_path(ORIGIN, "/nofollow/1")
    assert b'name="robots"' not in pages.render_path(ORIGIN, "/x-robots/noindex")  # a header instead


def test_spa_shell_is_empty_until_the_bundle_runs() -> None:
    shell = spa.spa_shell(ORIGIN, PROFILE, 4).decode()
    title = spa.spa_title(PROFILE, 4)
    assert title not in shell
    assert spa.spa_bundle_path(PROFILE) in shell and ".bundle.js" in shell
    assert "<noscript>" in shell
    visible = re.sub(r"<(script|noscript)[^>]*>.*?</\1>|<[^>]+>", "", shell, flags=re.S)
    assert len(visible.strip()) < 100
    data = json.loads(spa.spa_data(PROFILE, 4))
    assert data["title"] == title and len(data["paragraphs"]) >= 6
    assert b"/api/app/" in spa.spa_bundle(PROFILE)


def test_robots_rules_follow_the_profile() -> None:
    profiles = [site_profile(f"site-{i:03d}.demo.test") for i in range(1, 61)]
    assert any(p.disallow_private for p in profiles) and not all(p.disallow_private for p in profiles)
    assert any(p.has_crawl_delay for p in profiles)
    for p in profiles[:20]:
        text = robots_txt(p, crawl_delay_s=1.0, base="http://x", sitemaps=("/a.xml", "/b.txt")).decode()
        assert ("Disallow: /private/" in text) == p.disallow_private
        assert ("Crawl-delay: 1" in text) == p.has_crawl_delay
        assert "Disallow: /admin/" in text
        assert "Sitemap: http://x/a.xml\nSitemap: http://x/b.txt\n" in text


@pytest.mark.parametrize("variant", special.CHARSET_VARIANTS)
def test_charset_pages_decode_only_with_the_right_charset(variant: str) -> None:
    body, content_type = special.charset_page(ORIGIN, PROFILE, variant, 1)
    marker = special.CHARSET_MARKERS[variant]
    right = {"windows-1251": "cp1251", "shift_jis": "shift_jis", "meta-mismatch": "cp1252"}.get(
        variant, "utf-8"
    )
    assert marker in body.decode(right, errors="replace")
    if variant in ("windows-1251", "shift_jis", "meta-mismatch"):
        assert marker not in body.decode("utf-8", errors="replace")
    if variant == "invalid-utf8":
        with pytest.raises(UnicodeDecodeError):
            body.decode("utf-8")
    if variant == "meta-mismatch":
        assert b'<meta charset="utf-8">' in body and "windows-1252" in content_type
    if variant == "bogus":
        assert "x-bogus" in content_type
    if variant == "undeclared":
        assert content_type == "text/html" and b"charset=" not in body


def test_non_html_bodies_are_valid() -> None:
    pdf = special.pdf_body(3)
    assert pdf.startswith(b"%PDF-1.4") and pdf.rstrip().endswith(b"%%EOF")
    xref = int(pdf.rsplit(b"startxref\n", 1)[1].split()[0])
    assert pdf[xref:].startswith(b"xref")
    png = special.png_body(3)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    idat = png.index(b"IDAT")
    length = int.from_bytes(png[idat - 4 : idat], "big")
    assert len(zlib.decompress(png[idat + 4 : idat + 4 + length])) == 32 * (1 + 32 * 3)
    assert json.loads(special.json_body(PROFILE, 3))["page"] == 3
    ET.fromstring(special.xhtml_page(ORIGIN, PROFILE, 3))  # well-formed XML


def test_huge_page_exceeds_the_requested_size() -> None:
    head, chunk, repeats, tail = special.huge_parts(ORIGIN, PROFILE, 1, 6 * 1024 * 1024)
    total = len(head) + len(chunk) * repeats + len(tail)
    assert 6 * 1024 * 1024 <= total < 6 * 1024 * 1024 + len(chunk)
    assert len(chunk) >= 64 * 1024
