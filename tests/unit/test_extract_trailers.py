"""Announced trails after the article (workers/extract/trailers.py): synthetic blocks through
the Markdown writer, and one real page of the tuning set (CleanEval; never the unseen Dragnet
set, skipped when ../shared/data is absent)."""

from __future__ import annotations

import pytest
from selectolax.lexbor import LexborHTMLParser

from bench.quality import load_gold_set, text_f1
from workers.extract import extract
from workers.extract.links import Resolver
from workers.extract.markdown import render
from workers.extract.trailers import cut_trailers

_PROSE = "<p>" + "A sentence of the article itself, plain prose without any links in it. " * 6 + "</p>"
_TEASER = "<p><a href='/s{0}'>Another story, number {0}</a> with a line of teaser</p>"


def _text(html: str) -> str:
    tree = LexborHTMLParser(html)
    assert tree.body is not None
    return render([tree.body], Resolver("http://fakehost/")).text


def test_an_announced_trail_is_cut_up_to_the_next_heading() -> None:
    html = _PROSE + "<p><b>Related stories:</b></p>" + _TEASER.format(1) + _TEASER.format(2)
    html += "<h2>A later section</h2><p>Its text stays.</p>"
    text = _text(html)
    assert "Related stories" not in text and "Another story" not in text
    assert text.endswith("A later section\n\nIts text stays.")
    assert text.startswith("A sentence of the article itself")


@pytest.mark.parametrize(
    "marker", ["You may also like", "More from The Daily Example", "Share this:", "Most read"]
)
def test_announcements_in_other_words(marker: str) -> None:
    text = _text(_PROSE + f"<p>{marker}</p>" + _TEASER.format(1))
    assert marker not in text and "Another story" not in text


def test_an_announcement_before_most_of_the_content_is_kept() -> None:
    # Under MIN_BEFORE of the text above it: a heading-like line at the top, not a trail.
    html = "<p>Related articles</p>" + _PROSE + _PROSE
    assert _text(html).startswith("Related articles")


def test_a_long_block_without_links_resumes_the_content() -> None:
    resumed = "<p>" + "The next post of a front page, written out in full sentences. " * 4 + "</p>"
    text = _text(_PROSE + "<p>Related posts:</p>" + _TEASER.format(1) + resumed)
    assert "Another story" not in text
    assert "The next post of a front page" in text


def test_a_longer_block_naming_related_things_is_prose() -> None:
    text = _text(_PROSE + "<p>Related stories often tell you more than the article.</p>" + _TEASER.format(1))
    assert "Related stories often" in text


def test_cut_trailers_without_text() -> None:
    assert cut_trailers(["", ""], [0, 0]) == [0, 1]


def test_related_stories_after_a_news_article_are_cut() -> None:
    # CleanEval 307: a news article followed by "Related stories:" and ~30 linked headlines,
    # each with its teaser (long enough and link-light enough to pass the block tests).
    case = next((c for c in load_gold_set("cleaneval") if c.name == "307"), None)
    if case is None:
        pytest.skip("page 307 of CleanEval (../shared/data) not available")
    out = extract(case.source, url="http://fakehost/page/", charset=case.charset)
    assert "Related stories" not in out.text
    assert "Tories riled by Harper's tactic" not in out.text
    assert text_f1(out.text, case.expected_text) > 0.9
