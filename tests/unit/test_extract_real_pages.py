"""Fast extractor on a handful of real pages from ../shared/data (skipped when absent)."""

from __future__ import annotations

import pytest

from bench.quality import ReadabilityCase, load_readability, text_f1, title_match
from workers.extract import extract

PAGES = ("001", "ars-1", "nytimes-1", "wikipedia", "lemonde-1", "qq", "data-url-image", "aclu")


@pytest.fixture(scope="module")
def cases() -> dict[str, ReadabilityCase]:
    found = {c.name: c for c in load_readability() if c.name in PAGES}
    if len(found) != len(PAGES):
        pytest.skip("readability test pages (../shared/data) not available")
    return found


@pytest.mark.parametrize("name", PAGES)
def test_main_text_and_title(cases: dict[str, ReadabilityCase], name: str) -> None:
    case = cases[name]
    out = extract(case.source, url=f"http://fakehost/test/{name}/")
    assert text_f1(out.text, case.expected_text) > 0.9
    assert title_match(out.title, case.expected_title)[1]
    assert out.word_count > 50
    assert out.markdown
    assert all(link.startswith(("http://", "https://")) and "#" not in link for link in out.outlinks)
    assert len(set(out.outlinks)) == len(out.outlinks)


def test_metadata_of_a_known_page(cases: dict[str, ReadabilityCase]) -> None:
    case = cases["lemonde-1"]
    out = extract(case.source, url="http://fakehost/test/lemonde-1/")
    assert out.lang == case.metadata["lang"]
    assert out.published_time
    assert out.description


def test_extractor_benchmark_runs() -> None:
    from bench import stage_fast_extractor

    rows = stage_fast_extractor.bench(quick=True)
    assert rows and all("metric" in row for row in rows)
