"""Main-content extraction rules (Readability-style) on small inline pages."""

from __future__ import annotations

from selectolax.lexbor import LexborHTMLParser

from workers.extract.content import main_content
from workers.extract.signals import class_weight, link_density, unlikely

SENTENCE = "The river rose slowly through the night, and by morning the lower town was under water. "


def para(n: int = 3) -> str:
    return f"<p>{SENTENCE * n}</p>"


def content_text(html: str) -> str:
    return main_content(LexborHTMLParser(html), reparse=lambda: LexborHTMLParser(html)).text


def test_article_body_is_chosen_over_navigation_and_sidebar() -> None:
    html = (
        "<html><body><header><ul><li><a href='/'>Home</a></li><li><a href='/w'>World</a></li></ul></header>"
        f"<div id='story' class='article-body'>{para()}{para()}{para()}</div>"
        "<div class='sidebar'><p>Most read: celebrity gossip and other things, today.</p></div>"
        "<footer>Copyright the newspaper, all rights reserved.</footer></body></html>"
    )
    text = content_text(html)
    assert SENTENCE.strip() in text
    assert "Home" not in text and "Most read" not in text and "Copyright" not in text


def test_hidden_nodes_are_dropped() -> None:
    html = (
        f"<html><body><article>{para()}{para()}"
        "<div style='display:none'><p>Invisible promotional text that nobody sees.</p></div>"
        "<p hidden>Hidden paragraph.</p><div aria-hidden='true'>Aria hidden.</div>"
        f"{para()}</article></body></html>"
    )
    text = content_text(html)
    assert "Invisible" not in text and "Hidden paragraph" not in text and "Aria hidden" not in text


def test_unlikely_blocks_inside_content_are_removed() -> None:
    html = (
        f"<html><body><article>{para()}<div class='social-share'>Share on Facebook, Twitter</div>"
        f"{para()}<div class='comments'><p>{'Great post! ' * 20}</p></div>{para()}</article></body></html>"
    )
    text = content_text(html)
    assert "Share on Facebook" not in text
    assert "Great post" not in text
    assert text.count("river rose") == 9


def test_link_lists_are_cleaned_but_data_tables_kept() -> None:
    # A block of links (not a list: Readability keeps lists) is boilerplate.
    links = " | ".join(f"<a href='/r{i}'>Related story number {i}</a>" for i in range(8))
    table = (
        "<table><thead><tr><th>Year</th><th>Level</th></tr></thead>"
        "<tr><td>2020</td><td>4.1 m</td></tr><tr><td>2021</td><td>5.3 m</td></tr></table>"
    )
    html = f"<html><body><article>{para()}<div>{links}</div>{table}{para()}</article></body></html>"
    text = content_text(html)
    assert "Related story" not in text
    assert "5.3 m" in text


def test_short_page_falls_back_to_everything() -> None:
    html = "<html><body><div class='footer'><p>Only a short note here.</p></div></body></html>"
    # Under 500 characters: retried without the unlikely filter, the note is kept.
    assert "Only a short note here." in content_text(html)


def test_empty_and_bodyless_documents() -> None:
    assert content_text("") == ""
    assert content_text("<html></html>") == ""


def test_signals() -> None:
    tree = LexborHTMLParser(
        "<div id='a' class='post-content'>x</div><div id='b' class='comment-list'>y</div>"
        "<div id='c' class='sidebar main-column'>z</div><div id='d' class='related-links'>w</div>"
        "<p id='e'><a href='/x'>link text</a> and <a href='#n'>note</a> plain words</p>"
    )
    a, b, c, d, e = (tree.css(f"#{i}")[0] for i in "abcde")
    assert class_weight(a) == 25
    assert class_weight(b) == -25
    assert unlikely(b)
    assert not unlikely(c)  # "main" and "column" rescue it, as in Readability
    assert unlikely(d)
    assert not unlikely(a)
    density = link_density(e, len(e.text()))
    assert 0.3 < density < 0.5  # 9 link chars + 30% of 4 hash-link chars over 30


def test_deeply_nested_wrappers_stay_fast_and_do_not_recurse_out() -> None:
    from workers.extract import extract

    depth = 3000  # unclosed-<div> soup: recursion and quadratic scans would fail here
    html = "<div>" * depth + para() + "</div>" * depth
    out = extract(html.encode(), url="https://example.com/")
    assert out.word_count > 40
    assert "river rose" in out.markdown
