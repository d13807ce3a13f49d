"""Binary sniffing of bodies labelled HTML: real binary files yes, real pages in any encoding no."""

from __future__ import annotations

import gzip
import io
import os
import zipfile
from pathlib import Path

import pytest

from bench.quality import load_readability
from workers.ingestor.sniff import SNIFF_BYTES, looks_binary

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "binary"
HTML = b"<!doctype html><html><head><title>t</title></head><body><p>hello world</p></body></html>"


def _pdf() -> bytes:
    """A valid one-page PDF (what a 'download' link serves as text/html by mistake)."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R >>",
        b"<< /Length 21 >>\nstream\nBT /F1 12 Tf ET\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (i, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("index.html", HTML * 20)
    return buffer.getvalue()


BINARIES = {
    **{p.name: p.read_bytes() for p in sorted(SAMPLES.iterdir()) if p.suffix != ".md"},
    "gzipped page (a .gz file, not a Content-Encoding)": gzip.compress(HTML * 20),
    "zip": _zip(),
    "pdf": _pdf(),
    "random bytes": os.urandom(4096),
}


@pytest.mark.parametrize("name", sorted(BINARIES))
def test_real_binary_files_are_binary(name: str) -> None:
    assert looks_binary(BINARIES[name][:SNIFF_BYTES]), name


def test_the_samples_are_there() -> None:
    assert {"python.png", "python.jpg", "python.gif", "python.webp", "glyphicons-head.woff"} <= set(BINARIES)


@pytest.mark.parametrize(
    ("body", "charset"),
    [
        (HTML, None),
        (b"\xef\xbb\xbf" + HTML, None),  # UTF-8 BOM
        ("\ufeff<html><body>caf\u00e9</body></html>".encode("utf-16-le"), None),  # BOM, full of NULs
        ("<html><body>caf\u00e9</body></html>".encode("utf-16-le"), "utf-16"),  # NULs, labelled
        ("<html><body>\u65e5\u672c\u8a9e</body></html>".encode("iso-2022-jp"), None),  # ESC sequences
        ("<p>caf\u00e9 cr\u00e8me \u2014 na\u00efve</p>".encode("cp1252"), None),
        (b"", None),
        (b"\x0c<html>\r\n\t<body>x</body></html>", None),  # form feed, CR, tab
    ],
)
def test_text_in_any_encoding_is_not_binary(body: bytes, charset: str | None) -> None:
    assert not looks_binary(body, charset)


def test_a_few_stray_control_bytes_are_tolerated() -> None:
    page = HTML[:40] + b"\x01\x02\x0b" + HTML[40:] * 10
    assert not looks_binary(page)


def test_real_pages_are_not_binary() -> None:
    cases = load_readability()
    if not cases:
        pytest.skip("readability test pages (../shared/data) not available")
    flagged = [c.name for c in cases if looks_binary(c.source)]
    assert flagged == []
