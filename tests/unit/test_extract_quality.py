"""No silent bad extractions: quality signals, flags and fallbacks on real pages (../shared/data).

The CleanEval pages used here are from the tuning set; none is from the unseen Dragnet set.
"""

from __future__ import annotations

import pytest

from bench.extraction_sets import prf
from bench.quality import ReadabilityCase, load_gold_set, load_readability, text_f1
from workers.extract import content, extract


def _cases(loader: object, names: tuple[str, ...]) -> dict[str, ReadabilityCase]:
    found = {c.name: c for c in loader() if c.name in names}  # type: ignore[operator]
    if len(found) != len(names):
        pytest.skip("real-page sets (../shared/data) not available")
    return found


@pytest.fixture(scope="module")
def cleaneval() -> dict[str, ReadabilityCase]:
    return _cases(lambda: load_gold_set("cleaneval"), ("482", "614", "686", "266", "504", "278"))


@pytest.fixture(scope="module")
def readability() -> dict[str, ReadabilityCase]:
    return _cases(load_readability, ("002", "bug-1255978"))


@pytest.mark.parametrize("name", ["482", "614", "686"])
def test_pages_wrapped_in_a_form_keep_their_main_text(
    cleaneval: dict[str, ReadabilityCase], name: str
) -> None:
    # The first build dropped every <form>: these ASP.NET-style pages came out empty.
    case = cleaneval[name]
    out = extract(case.source, url="http://fakehost/", charset=case.charset)
    assert text_f1(out.text, case.expected_text) > 0.8
    assert not any(f.startswith("empty_main_text") for f in out.quality_flags)
    assert out.quality["method"].startswith("readability")
    assert out.quality["coverage"] > 0.3


def test_signals_describe_the_extraction(readability: dict[str, ReadabilityCase]) -> None:
    case = readability["002"]
    out = extract(case.source, url="http://fakehost/")
    q = out.quality
    assert q["method"] == "readability" and q["block"]
    assert q["text_chars"] == len(out.text) and q["visible_chars"] > q["text_chars"] * 0.5
    assert 0 < q["coverage"] <= 1 and q["article_chars"] is None  # measured for short results only
    assert 0 <= q["link_density"] < 0.2 and q["language_reliable"] is True
    assert out.quality_flags == []


def test_falls_back_to_the_article_when_readability_yields_nothing(
    readability: dict[str, ReadabilityCase], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = readability["bug-1255978"]
    monkeypatch.setattr(content, "_grab", lambda *a, **k: None)  # the scorer finds nothing …
    monkeypatch.setattr(content.MainContent, "of", _nothing_but_fallbacks(content.MainContent.of))
    out = extract(case.source, url="http://fakehost/")
    assert out.quality["method"] == "article"
    assert any(f.startswith("fallback") for f in out.quality_flags)
    precision, recall, _ = prf(out.text, case.expected_text)
    assert recall > 0.95 and precision > 0.15  # the whole article: all of the text, and its extras


def test_flags_an_empty_extraction_beside_a_long_article(
    readability: dict[str, ReadabilityCase], monkeypatch: pytest.MonkeyPatch
) -> None:
    case = readability["bug-1255978"]
    monkeypatch.setattr(content, "_grab", lambda *a, **k: None)
    monkeypatch.setattr(
        content, "_fallback", lambda tree, chars: content.MainContent(nodes=[], method="body")
    )
    monkeypatch.setattr(content.MainContent, "of", _nothing_but_fallbacks(content.MainContent.of))
    out = extract(case.source, url="http://fakehost/")
    names = [f.split(":")[0] for f in out.quality_flags]
    assert "empty_main_text" in names and "article_ignored" in names
    assert out.text == ""


def _nothing_but_fallbacks(of: object) -> object:
    """MainContent.of that keeps only what a fallback chose (Readability's picks come out empty)."""

    def patched(nodes: list[object], *, method: str, top: object = None) -> content.MainContent:
        if method.startswith("readability"):
            return content.MainContent(nodes=[], method=method)
        return of(nodes, method=method, top=top)  # type: ignore[operator, no-any-return]

    return classmethod(lambda cls, nodes, **kw: patched(nodes, **kw))


def test_flags_comments_chosen_as_the_main_block(cleaneval: dict[str, ReadabilityCase]) -> None:
    case = cleaneval["266"]  # a blog page whose biggest block is its comment thread
    out = extract(case.source, url="http://fakehost/", charset=case.charset)
    assert any(f.startswith("boilerplate_block") for f in out.quality_flags), out.quality


def test_flags_a_main_text_that_is_mostly_links(cleaneval: dict[str, ReadabilityCase]) -> None:
    case = cleaneval["504"]  # a newswire index: the chosen block is a list of headlines
    out = extract(case.source, url="http://fakehost/", charset=case.charset)
    assert out.quality["link_density"] > 0.5
    assert any(f.startswith("link_heavy") for f in out.quality_flags)


def test_a_404_page_is_not_flagged_empty(cleaneval: dict[str, ReadabilityCase]) -> None:
    case = cleaneval["278"]  # "404 : Page Not Found": little text, nothing to flag
    out = extract(case.source, url="http://fakehost/", charset=case.charset)
    assert not any(f.startswith("empty_main_text") for f in out.quality_flags)
