"""Block pruning of the written main content (workers/extract/segments.py), the Markdown
writer's link-text accounting and the byline rule (workers/extract/cleaning.py), on real pages of the tuning sets (CleanEval, readability;
never the unseen Dragnet set). Skipped when ../shared/data is absent."""

from __future__ import annotations

import pytest

from bench.quality import ReadabilityCase, load_gold_set, load_readability, text_f1
from workers.extract import extract
from workers.extract.links import Resolver
from workers.extract.markdown import render
from workers.extract.segments import prune


def _case(cases: list[ReadabilityCase], name: str) -> ReadabilityCase:
    for case in cases:
        if case.name == name:
            return case
    pytest.skip(f"page {name} of the gold sets (../shared/data) not available")


@pytest.fixture(scope="module")
def readability() -> list[ReadabilityCase]:
    return load_readability()


@pytest.fixture(scope="module")
def cleaneval() -> list[ReadabilityCase]:
    return load_gold_set("cleaneval")


def test_teaser_cards_wrapped_in_links_are_link_blocks(readability: list[ReadabilityCase]) -> None:
    # medicalnewstoday: "Latest news" and "Related coverage" are <a> elements wrapping a
    # headline and an excerpt (block elements inside the link).
    case = _case(readability, "medicalnewstoday")
    out = extract(case.source, url="http://fakehost/test/medicalnewstoday/")
    assert "how a drug cocktail of four compounds can convert glia" not in out.text
    assert "Pets benefit our mental health" not in out.text
    assert "Pets benefit our mental health" not in out.markdown
    assert out.quality["link_blocks_dropped"] > 0
    assert text_f1(out.text, case.expected_text) > 0.95


def test_trail_of_short_blocks_between_link_blocks_is_dropped(cleaneval: list[ReadabilityCase]) -> None:
    # CleanEval 628, a blog post: after the post, "Trackbacks / No Comments / Why not post
    # one? / Post a Comment / Page 1 of 1" between previous/next links.
    case = _case(cleaneval, "628")
    out = extract(case.source, url="http://fakehost/page/", charset=case.charset)
    lines = set(out.text.split("\n"))
    assert not lines & {"Trackbacks", "No Comments", "Why not post one?", "Post a Comment", "Page 1 of 1"}
    assert text_f1(out.text, case.expected_text) > 0.95


def test_link_heavy_related_blocks_are_dropped(cleaneval: list[ReadabilityCase]) -> None:
    # CleanEval 508: "Related content from HighBeam Research": linked titles, each with its
    # source in parentheses (so under the writer's 90% but over half link text).
    case = _case(cleaneval, "508")
    out = extract(case.source, url="http://fakehost/page/", charset=case.charset)
    assert "Identity and plurality. (International Review of Mission)" not in out.text
    assert "plurality" in out.text.lower()
    assert text_f1(out.text, case.expected_text) > 0.85


def test_reference_lists_are_kept(readability: list[ReadabilityCase]) -> None:
    # wikipedia-4: the references are list items that are mostly links: list blocks are
    # tested item by item by the writer, never dropped whole by their density.
    case = _case(readability, "wikipedia-4")
    out = extract(case.source, url="http://fakehost/test/wikipedia-4/")
    assert "Deptford Cinema" in out.text
    assert text_f1(out.text, case.expected_text) > 0.95


def _body(html: str) -> str:
    from selectolax.lexbor import LexborHTMLParser

    tree = LexborHTMLParser(html)
    assert tree.body is not None
    return render([tree.body], Resolver("http://fakehost/")).text


def test_prune_keeps_content_without_a_good_block() -> None:
    # Over half link text and short, but no block of prose to be boilerplate around.
    html = "<p><a href='/a'>One</a> two</p><p><a href='/b'>Three</a> four</p><p>short</p>"
    assert _body(html).split("\n\n") == ["One two", "Three four", "short"]
    assert prune("no paragraphs") == "no paragraphs"


def test_prune_is_linear_on_many_short_blocks() -> None:
    import time

    good = "<p>" + "A sentence of plain prose, long enough to count as content. " * 5 + "</p>"
    html = good + "<p><a href='/x'>a link</a> and</p><p>x</p>" * 20_000
    started = time.process_time()
    text = _body(html)
    assert time.process_time() - started < 5
    assert text.startswith("A sentence")
    assert "\nx" not in text and "a link and" not in text


@pytest.mark.parametrize(
    ("name", "byline"),
    [("ars-1", "Dan Goodin - Apr 16, 2015 8:02 pm UTC"), ("webmd-2", "By Kelli Miller")],
)
def test_the_byline_is_metadata_not_main_text(
    readability: list[ReadabilityCase], name: str, byline: str
) -> None:
    case = _case(readability, name)
    out = extract(case.source, url=f"http://fakehost/test/{name}/")
    assert byline not in out.text.split("\n")
    assert text_f1(out.text, case.expected_text) > 0.95


@pytest.mark.parametrize(
    ("name", "notice"),
    [
        ("628", "www.patchworkprogression.com | Copyright ©2003-2006 Patch | ccl"),
        ("508", "Information Please® Database, © 2006 Pearson Education, Inc. All rights reserved."),
    ],
)
def test_copyright_notices_are_dropped(cleaneval: list[ReadabilityCase], name: str, notice: str) -> None:
    case = _case(cleaneval, name)
    out = extract(case.source, url="http://fakehost/page/", charset=case.charset)
    assert notice not in out.text and notice not in out.markdown
    assert "copyright" not in out.text.lower().split("\n")[-1]


def test_a_copyright_word_in_prose_is_content(cleaneval: list[ReadabilityCase]) -> None:
    # CleanEval 124: "a surprisingly strong victory for copyright companies" is news text.
    case = _case(cleaneval, "124")
    out = extract(case.source, url="http://fakehost/page/", charset=case.charset)
    assert "strong victory for copyright companies" in out.text
