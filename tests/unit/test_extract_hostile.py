"""Hostile pages stay bounded: deep nesting, 200,000 links, attribute soup (issue 9.7)."""

from __future__ import annotations

import time

import pytest

from workers.extract import extract
from workers.extract.bounds import flattened, scan


def _deep(levels: int, tag: str = "div") -> bytes:
    return (
        f"<html><body>{f'<{tag}>' * levels}<p>Deep text, with commas, that a reader would see.</p>"
        f"{f'</{tag}>' * levels}</body></html>"
    ).encode()


def test_the_byte_scan_sees_nesting_and_tags() -> None:
    assert scan(_deep(500)).depth == 500  # <p> is not a block tag of the scan
    flat = scan(b"<html><body>" + b"<div>x</div>" * 5000 + b"</body></html>")
    assert flat.depth == 1 and flat.tags > 10_000
    assert scan(_deep(300, "SECTION")).depth >= 300  # case-insensitive
    assert scan(b"").tags == 0
    assert b"<div" not in flattened(_deep(10)) and b"Deep text" in flattened(_deep(10))


@pytest.mark.parametrize("levels", [1_000, 20_000, 100_000])
def test_deep_nesting_costs_linear_time(levels: int) -> None:
    started = time.process_time()
    out = extract(_deep(levels), url="http://hostile.test/")
    elapsed = time.process_time() - started
    assert "Deep text" in out.text
    # Unbounded, lexbor alone needed 1.5 s for 20,000 levels and minutes for 100,000.
    assert elapsed < 0.5 + levels * 30e-6, elapsed  # loose: CPU time inflates on a loaded machine
    flagged = any(f.startswith("deep_nesting") for f in out.quality_flags)
    assert flagged == (levels > 2_000)


def test_deep_nesting_of_other_block_tags_is_bounded_too() -> None:
    started = time.process_time()
    out = extract(_deep(50_000, "blockquote"), url="http://hostile.test/")
    assert time.process_time() - started < 2.0
    assert "Deep text" in out.text


def test_two_hundred_thousand_links_are_capped_and_counted() -> None:
    links = "".join(f'<a href="/p/{i}">link {i}</a> ' for i in range(200_000))
    html = f"<html><body><p>{links}</p></body></html>".encode()
    started = time.process_time()
    out = extract(html, url="http://hostile.test/", max_outlinks=1_000)
    assert time.process_time() - started < 10.0
    assert len(out.outlinks) == 1_000 and out.outlinks[0] == "http://hostile.test/p/0"
    assert out.outlinks_total == 200_000
    assert any(f.startswith("node_cap") for f in out.quality_flags)  # 400,000 tags > 200,000


def test_attribute_soup_is_bounded() -> None:
    attrs = " ".join(f'data-a{i}="{"x" * 20}"' for i in range(2_000))
    html = (
        "<html><body>" + f"<div {attrs}><p>Some text, with commas, here.</p></div>" * 200 + "</body></html>"
    ).encode()
    assert len(html) > 8_000_000
    started = time.process_time()
    out = extract(html, url="http://hostile.test/")
    assert time.process_time() - started < 10.0
    assert "Some text" in out.text
