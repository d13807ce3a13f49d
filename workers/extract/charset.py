"""Decoding a page's bytes: BOM, then the declared charset unless the bytes are valid UTF-8.

Valid UTF-8 wins over a declared legacy charset: multi-byte UTF-8 sequences almost never
occur by accident in another encoding, while stale ``<meta charset>`` declarations are
common (one page of the readability set declares gb2312 and is UTF-8). Declared names are
mapped the way browsers do (WHATWG: latin1/ascii mean windows-1252, gb2312 means GBK ...).
Unknown or broken charsets never raise: the page is decoded as UTF-8 with replacement.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Final

__all__ = ["Decoded", "charset_from_content_type", "decode_html", "sniff_encoding"]

_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_ALIASES: Final = {
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "iso_8859-1": "cp1252",
    "ascii": "cp1252",
    "us-ascii": "cp1252",
    "windows-1252": "cp1252",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "x-sjis": "shift_jis",
    "iso-8859-9": "cp1254",
    "tis-620": "cp874",
    "utf8": "utf-8",
}
_META: Final = re.compile(
    rb"""<meta[^<>]{1,512}?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.()-]{1,40})""", re.IGNORECASE
)
_CT_CHARSET: Final = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_:.()-]+)""", re.IGNORECASE)
_SNIFF_BYTES: Final = 4096


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str
    """Python codec name used (``utf-8``, ``cp1252`` ...)."""


def charset_from_content_type(content_type: str | None) -> str | None:
    """The ``charset=`` parameter of a Content-Type header value, if any."""
    if not content_type:
        return None
    match = _CT_CHARSET.search(content_type)
    return match.group(1) if match else None


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    key = name.strip().strip("\"'").lower()
    key = _ALIASES.get(key, key)
    try:
        return codecs.lookup(key).name
    except (LookupError, ValueError):
        return None


def sniff_encoding(html: bytes, *, charset: str | None = None, content_type: str | None = None) -> str:
    """The codec ``html`` should be decoded with (a Python codec name).

    Cheap on the common path: a page declared UTF-8 (or pure ASCII) is not decoded here.
    """
    for bom, name in _BOMS:
        if html.startswith(bom):
            return name
    declared = _codec(charset) or _codec(charset_from_content_type(content_type))
    if declared and declared.startswith(("utf-16", "utf-32")):
        return declared
    if not declared:
        match = _META.search(html, 0, _SNIFF_BYTES)
        declared = _codec(match.group(1).decode("ascii", "replace")) if match else None
    if declared == "utf-8" or html.isascii():
        return "utf-8"
    try:
        html.decode("utf-8")
    except UnicodeDecodeError:
        return declared or "utf-8"
    return "utf-8"


def decode_html(html: bytes, *, charset: str | None = None, content_type: str | None = None) -> Decoded:
    """Decode ``html``; ``charset``/``content_type`` are the transport's hints."""
    encoding = sniff_encoding(html, charset=charset, content_type=content_type)
    for bom, name in _BOMS:
        if html.startswith(bom) and name == encoding:
            html = html[len(bom) :]
            break
    try:
        return Decoded(html.decode(encoding, "replace"), encoding)
    except (LookupError, ValueError):  # a codec that cannot decode bytes at all
        return Decoded(html.decode("utf-8", "replace"), "utf-8")
