"""Storage layer without services: key layout, write planning, row encoding, migrations."""

from __future__ import annotations

import dataclasses
import time

import pytest
import zstandard

from workers.errors import RecordRejected
from workers.messages import ProcessedPage, compress_html
from workers.storage.migrate import load_migrations
from workers.storage.objects import Blob, digest, page_keys, segment_key
from workers.storage.pages import (
    UPSERT_SQL,
    clean_text,
    columns_of,
    join_lines,
    signed_simhash,
    split_lines,
    unsigned_simhash,
)
from workers.storage.plan import ObjectRefs, WritePlan, plan_writes
from workers.urls import url_hash


def _rb(plan: WritePlan) -> tuple[list[ObjectRefs], list[Blob]]:
    return plan.refs, plan.blobs


def page(n: int = 0, **changes: object) -> ProcessedPage:
    url = f"https://site{n % 3}.test/article/{n}"
    now = time.time()
    base = ProcessedPage(
        url=url,
        url_hash=url_hash(url),
        host=f"site{n % 3}.test",
        final_url=url,
        status=200,
        route="fast",
        score=95,
        fetched_at=now,
        processed_at=now,
        content_hash="c" * 32,
        html_zstd=compress_html(f"<html><body><p>page {n}</p></body></html>".encode()),
        markdown=f"# Page {n}\n\nbody text",
        outlinks=[f"https://other.test/{i}" for i in range(3)],
        rules=["article"],
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_page_keys_are_derived_from_the_url_hash_with_a_two_char_prefix() -> None:
    h = "0efb5a2ae2f2f370c4060e042597dba2"
    keys = page_keys(h)
    assert keys.html == f"pages/0e/{h}/raw.html.zst"
    assert keys.markdown == f"pages/0e/{h}/content.md"
    assert keys.rendered == f"pages/0e/{h}/rendered.html.zst"
    assert segment_key("ab" * 16) == f"segments/ab/{'ab' * 16}.seg"


@pytest.mark.parametrize("bad", ["", "abc", "../../etc/passwd", "AB" * 16, "zz" * 16, "a" * 200])
def test_a_bad_url_hash_is_a_rejected_record(bad: str) -> None:
    with pytest.raises(RecordRejected):
        page_keys(bad)


def test_page_layout_writes_html_and_markdown_then_nothing_when_unchanged() -> None:
    p = page(1)
    refs, blobs = _rb(plan_writes([p], [None], layout="page"))
    assert sorted(b.key for b in blobs) == sorted(
        [page_keys(p.url_hash).html, page_keys(p.url_hash).markdown]
    )
    assert refs[0].html is not None and refs[0].html.digest == digest(p.html_zstd)
    assert refs[0].rendered is None

    again, blobs2 = _rb(plan_writes([p], refs, layout="page"))
    assert blobs2 == [] and again == refs

    changed = dataclasses.replace(p, markdown="# new text")
    refs3, blobs3 = _rb(plan_writes([changed], refs, layout="page"))
    assert [b.key for b in blobs3] == [page_keys(p.url_hash).markdown]
    assert refs3[0].html == refs[0].html


def test_rendered_dom_is_a_third_object_and_skipped_pages_have_none() -> None:
    p = page(2, rendered_html_zstd=compress_html(b"<html>rendered</html>"))
    _, blobs = _rb(plan_writes([p], [None], layout="page"))
    assert page_keys(p.url_hash).rendered in {b.key for b in blobs}

    skipped = page(3, skipped="content-type application/pdf", html_zstd=b"", markdown="")
    refs, blobs = _rb(plan_writes([skipped], [None], layout="page"))
    assert blobs == [] and refs == [ObjectRefs()]

    empty_md = page(4, markdown="")
    refs, blobs = _rb(plan_writes([empty_md], [None], layout="page"))
    assert len(blobs) == 1 and refs[0].markdown is None


def test_a_part_the_new_version_lacks_is_deleted_after_the_row_write() -> None:
    p = page(5)
    refs, _ = _rb(plan_writes([p], [None], layout="page"))
    now_skipped = dataclasses.replace(p, skipped="content-type application/pdf", html_zstd=b"", markdown="")
    plan = plan_writes([now_skipped], refs, layout="page")
    assert plan.blobs == [] and plan.refs == [ObjectRefs()]
    assert sorted(plan.stale) == sorted([page_keys(p.url_hash).html, page_keys(p.url_hash).markdown])
    # Parts inside a segment are never deleted one by one.
    seg_refs, _ = _rb(plan_writes([p], [None], layout="segment"))
    assert plan_writes([now_skipped], seg_refs, layout="page").stale == []


def test_segment_layout_packs_parts_as_readable_byte_ranges() -> None:
    pages = [page(i) for i in range(5)]
    refs, blobs = _rb(plan_writes(pages, [None] * 5, layout="segment"))
    assert len(blobs) == 1
    body = blobs[0].data
    for p, r in zip(pages, refs, strict=True):
        assert r.html is not None and r.markdown is not None
        assert r.html.key == blobs[0].key == segment_key(digest(body))
        assert r.html.offset is not None and r.html.length is not None
        html = body[r.html.offset : r.html.offset + r.html.length]
        assert zstandard.ZstdDecompressor().decompress(html) == zstandard.ZstdDecompressor().decompress(
            p.html_zstd
        )
        assert r.markdown.offset is not None and r.markdown.length is not None
        md = body[r.markdown.offset : r.markdown.offset + r.markdown.length]
        assert md.decode() == p.markdown

    # The same batch again after a crash before the row write maps to the same key.
    _, again = _rb(plan_writes(pages, [None] * 5, layout="segment"))
    assert [b.key for b in again] == [blobs[0].key]
    # Stored and unchanged: nothing to write.
    _, none = _rb(plan_writes(pages, refs, layout="segment"))
    assert none == []


def test_segments_are_split_at_the_size_cap() -> None:
    pages = [page(i) for i in range(10)]
    _, blobs = _rb(plan_writes(pages, [None] * 10, layout="segment", segment_max_bytes=200))
    assert len(blobs) > 1
    assert sum(len(b.data) for b in blobs) == sum(len(p.html_zstd) + len(p.markdown.encode()) for p in pages)


def test_list_columns_round_trip_and_never_split_an_item() -> None:
    links = ["https://a.test/x", "https://b.test/y?q=1"]
    assert split_lines(join_lines(links)) == links
    assert split_lines(join_lines([])) == []
    assert split_lines(join_lines(["https://a.test/\nevil", "b"])) == ["https://a.test/ evil", "b"]


def test_text_is_made_storable_in_postgresql() -> None:
    assert clean_text("a\x00b") == "ab"
    assert clean_text("x\ud800y") == "x?y"
    assert clean_text("plain ü") == "plain ü"


@pytest.mark.parametrize("value", [0, 1, 2**63 - 1, 2**63, 2**64 - 1])
def test_simhash_maps_onto_a_signed_bigint_and_back(value: int) -> None:
    signed = signed_simhash(value)
    assert -(2**63) <= signed < 2**63
    assert unsigned_simhash(signed) == value


def test_upsert_parameters_match_the_columns() -> None:
    cols = columns_of([page(1), page(2)], [ObjectRefs(), ObjectRefs()])
    assert all(len(c) == 2 for c in cols)
    assert f"${len(cols)}::" in UPSERT_SQL and f"${len(cols) + 1}::" not in UPSERT_SQL


def test_migrations_are_numbered_and_ordered() -> None:
    migrations = load_migrations()
    assert [m.version for m in migrations] == sorted({m.version for m in migrations})
    assert migrations[0].version == 1 and "CREATE TABLE pages" in migrations[0].sql
    assert all(len(m.checksum) == 64 for m in migrations)
