"""What a response body is: HTML or not, and in which character encoding.

Cheap, byte-level checks that run on every page (no full decode, no statistical
detector):

- :func:`media_type` parses a Content-Type header;
- :func:`sniff_html` follows the WHATWG MIME-sniffing rule for HTML (a known tag or
  comment opener after leading whitespace) when the header is missing or generic;
- :func:`detect_charset` follows the HTML encoding-sniffing order: byte-order mark,
  then the Content-Type ``charset`` parameter, then a ``<meta charset>`` /
  ``<meta http-equiv=content-type>`` in the first 4 KiB (a conservative prescan),
  then "is it valid UTF-8?", then the web's legacy default ``windows-1252``.
  Unknown labels (``charset=klingon``) are ignored and the next source is tried.
  The name returned is Python's canonical codec name (``utf-8``, ``cp1252``, ...).
"""

from __future__ import annotations

import codecs
import re

__all__ = ["HTML_TYPES", "detect_charset", "is_generic_type", "is_html_type", "media_type", "sniff_html"]

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_GENERIC_TYPES = frozenset({"", "application/octet-stream", "application/unknown", "unknown/unknown", "*/*"})
_BOMS = (
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
)
_HTML_OPENERS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<body",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<br",
    b"<p",
    b"<!--",
    b"<meta",
)
_META_CHARSET = re.compile(rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.()+-]+)""", re.IGNORECASE)
_PRESCAN_BYTES = 4096
_UTF8_CHECK_BYTES = 65_536


def media_type(content_type: str | None) -> tuple[str, str | None]:
    """``("text/html", "utf-8")`` from ``"text/html; charset=UTF-8"``; ``("", None)`` if absent."""
    if not content_type:
        return "", None
    kind, _, params = content_type.partition(";")
    charset = None
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip("\"'") or None
    return kind.strip().lower(), charset


def is_html_type(kind: str) -> bool:
    return kind in HTML_TYPES


def sniff_html(body: bytes) -> bool:
    """True if ``body`` starts (after whitespace and a BOM) like an HTML document."""
    head = body[:512]
    for bom, _ in _BOMS:
        if head.startswith(bom):
            head = head[len(bom) :]
            break
    head = head.lstrip(b" \t\r\n\x0c").lower()
    for opener in _HTML_OPENERS:
        if head.startswith(opener):
            rest = head[len(opener) : len(opener) + 1]
            if opener == b"<!--" or rest in (b" ", b">", b"\t", b"\n", b"\r", b"\x0c", b"/"):
                return True
    return False


def is_generic_type(kind: str) -> bool:
    """A Content-Type that says nothing (absent, octet-stream, ...): sniff the body."""
    return kind in _GENERIC_TYPES


def _codec(label: str | None) -> str | None:
    if not label:
        return None
    try:
        name = codecs.lookup(label.strip().lower()).name
    except (LookupError, ValueError):
        return None
    return name


def detect_charset(body: bytes, header_charset: str | None) -> str:
    """The body's character encoding (see the module docstring for the order)."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name
    from_header = _codec(header_charset)
    if from_header is not None:
        return from_header
    match = _META_CHARSET.search(body, 0, _PRESCAN_BYTES)
    if match is not None:
        from_meta = _codec(match.group(1).decode("ascii", "replace"))
        if from_meta is not None:
            # WHATWG: a utf-16 label found by an ASCII prescan means the bytes are utf-8.
            return "utf-8" if from_meta.startswith("utf-16") else from_meta
    sample = body[:_UTF8_CHECK_BYTES]
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A multi-byte sequence cut by the sample boundary is still UTF-8.
        if exc.start < len(sample) - 3:
            return "cp1252"
    return "utf-8"
