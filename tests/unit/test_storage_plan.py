"""Storage layer without services: key layout, packing records into objects, row encoding, migrations."""

from __future__ import annotations

import dataclasses
import time

import pytest
import zstandard

from workers.errors import RecordRejected
from workers.messages import ProcessedPage, compress_html
from workers.storage.migrate import load_migrations
from workers.storage.objects import page_keys, segment_key
from workers.storage.pages import (
    UPSERT_SQL,
    clean_text,
    columns_of,
    join_lines,
    signed_simhash,
    split_lines,
    unsigned_simhash,
)
from workers.storage.plan import ObjectRefs, pack
from workers.storage.warc import PageRecords, build_page_records, sha1_digest
from workers.storage.warc_read import decode_part, read_record
from workers.urls import url_hash


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


def _records(pages: list[ProcessedPage]) -> list[PageRecords]:
    return [build_page_records(p) for p in pages]


def test_pages_are_packed_as_contiguous_runs_of_records_readable_by_range() -> None:
    pages = [page(i, text=f"page {i} text") for i in range(5)]
    blobs, refs = pack(_records(pages), max_bytes=4_000_000, now=time.time())
    assert len(blobs) == 1
    body = blobs[0].data
    assert blobs[0].key.startswith("warc/") and blobs[0].key.endswith(".warc.gz")
    first = read_record(body[: refs[0].warc.offset if refs[0].warc else 0])
    assert first.kind == "warcinfo"  # every object opens with one
    end = None
    for p, r in zip(pages, refs, strict=True):
        assert r.warc is not None and r.html is not None and r.markdown is not None and r.text is not None
        assert {r.html.key, r.markdown.key, r.text.key, r.warc.key} == {blobs[0].key}
        if end is not None:
            assert r.warc.offset == end  # runs are contiguous
        end = r.warc.offset + r.warc.length
        assert r.warc.offset <= r.html.offset < r.warc.offset + r.warc.length  # type: ignore[operator]
        assert r.rendered is None
        html = decode_part(body[r.html.offset : r.html.offset + r.html.length], part="html", warc=True)  # type: ignore[operator]
        assert html == zstandard.ZstdDecompressor().decompress(p.html_zstd)
        md = decode_part(
            body[r.markdown.offset : r.markdown.offset + r.markdown.length], part="markdown", warc=True
        )  # type: ignore[operator]
        assert md.decode() == p.markdown
        assert r.html.digest == sha1_digest(html)
    assert end == len(body)


def test_objects_are_rolled_at_the_size_cap_and_keys_are_never_reused() -> None:
    pages = [page(i) for i in range(10)]
    records = _records(pages)
    blobs, refs = pack(records, max_bytes=3 * records[0].size, now=time.time())
    assert len(blobs) >= 3
    assert len({b.key for b in blobs}) == len(blobs)
    assert len({r.warc.key for r in refs if r.warc}) == len(blobs)
    again, _ = pack(records, max_bytes=3 * records[0].size, now=time.time())
    assert not {b.key for b in again} & {b.key for b in blobs}  # a rewrite never replaces an object
    big, big_refs = pack(records[:1], max_bytes=10, now=time.time())  # bigger than the cap: alone
    assert len(big) == 1 and big_refs[0].warc is not None


def test_optional_parts_get_records_only_when_present() -> None:
    bare = build_page_records(page(1, markdown="", text=""))
    assert [r.kind for r in bare.records] == ["request", "response", "metadata"]
    rich = build_page_records(page(2, text="t", rendered_html_zstd=compress_html(b"<html>r</html>")))
    assert [(r.kind, r.part) for r in rich.records] == [
        ("request", None),
        ("response", "html"),
        ("metadata", None),
        ("conversion", "text"),
        ("conversion", "markdown"),
        ("conversion", "rendered"),
    ]


def test_a_corrupt_body_is_rejected_not_stored() -> None:
    with pytest.raises(RecordRejected):
        build_page_records(page(1, html_zstd=b"\x28\xb5\x2f\xfd garbage"))


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
    assert 10 in {m.version for m in migrations}  # the WARC layout and corpus columns
    assert all(len(m.checksum) == 64 for m in migrations)
