"""Content-type parsing, HTML sniffing and charset detection."""

from __future__ import annotations

import codecs

import pytest

from workers.ingestor.charset import detect_charset, is_generic_type, is_html_type, media_type, sniff_html


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, ("", None)),
        ("text/html", ("text/html", None)),
        ('Text/HTML; Charset="UTF-8"', ("text/html", "UTF-8")),
        ("application/xhtml+xml; q=1; charset=iso-8859-1", ("application/xhtml+xml", "iso-8859-1")),
        ("text/html; charset=", ("text/html", None)),
    ],
)
def test_media_type(header: str | None, expected: tuple[str, str | None]) -> None:
    assert media_type(header) == expected


def test_html_and_generic_types() -> None:
    assert is_html_type("text/html") and is_html_type("application/xhtml+xml")
    assert not is_html_type("text/plain") and not is_html_type("application/json")
    assert is_generic_type("") and is_generic_type("application/octet-stream")
    assert not is_generic_type("text/plain") and not is_generic_type("image/png")


@pytest.mark.parametrize(
    ("body", "html"),
    [
        (b"<!DOCTYPE html><html>", True),
        (b"\n\t  <html lang=en>", True),
        (codecs.BOM_UTF8 + b"<html>", True),
        (b"<!-- comment --><div>", True),
        (b"<p>text</p>", True),
        (b"<br/>", True),
        (b"<body>", True),
        (b"<bogus>", False),
        (b"<pre>", False),  # <p followed by a letter is not <p>
        (b"%PDF-1.7", False),
        (b"\x89PNG\r\n", False),
        (b'{"json": true}', False),
        (b"", False),
    ],
)
def test_sniff_html(body: bytes, html: bool) -> None:
    assert sniff_html(body) is html


def test_bom_beats_header() -> None:
    assert detect_charset(codecs.BOM_UTF8 + b"<p>x</p>", "iso-8859-1") == "utf-8"
    assert detect_charset(codecs.BOM_UTF16_LE + "<p>".encode("utf-16-le"), None) == "utf-16-le"


def test_header_beats_meta() -> None:
    assert detect_charset(b'<meta charset="windows-1251">', "koi8-r") == "koi8-r"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b'<html><head><meta charset="windows-1251">', "cp1251"),
        (b"<meta http-equiv=Content-Type content='text/html; charset=Shift_JIS'>", "shift_jis"),
        (b'<meta charset="utf-16">', "utf-8"),  # an ASCII prescan found it: the bytes are not UTF-16
        (b'<meta charset="klingon"><p>caf\xc3\xa9</p>', "utf-8"),  # unknown label: next source
        (b"<p>caf\xe9</p>", "cp1252"),  # undeclared, not UTF-8: legacy default
        (b"<p>plain ascii</p>", "utf-8"),
    ],
)
def test_meta_and_fallbacks(body: bytes, expected: str) -> None:
    assert detect_charset(body, None) == expected


def test_unknown_header_label_is_ignored() -> None:
    assert detect_charset(b"<p>caf\xc3\xa9</p>", "klingon") == "utf-8"


def test_meta_beyond_prescan_window_is_not_used() -> None:
    body = b"<p>" + b"x" * 5000 + b'<meta charset="koi8-r">'
    assert detect_charset(body, None) == "utf-8"


def test_utf8_cut_at_sample_boundary_is_still_utf8() -> None:
    body = b"a" * 65_535 + "\u00e9".encode() + b"tail"
    assert detect_charset(body, None) == "utf-8"
