"""One cheap pass over a page's bytes: framework markers and a visible-text estimate.

No parse tree. A single Aho-Corasick scan (Rust, SIMD prefilter) finds every marker and
the boundaries of ``<script>``, ``<style>``, ``<noscript>`` and ``<template>`` in one go
(comments are not tracked: they cost a third of the matches and hold almost no text); a
small state machine walks those (typically 100-300) matches in order. Finding end tags
with ``bytes.find`` instead was measured slower: it re-reads every script's bytes. Visible text
is what is left of the body between those blocks once tags are stripped, counted in
characters without whitespace. Up to ``FULL_TEXT_BYTES`` of markup it is counted exactly;
beyond that it is estimated from ``SAMPLES`` evenly spaced windows, so the cost per page is
bounded whatever the page size (the regex tag stripper is the slow part: ~2 µs per KB).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Final

import ahocorasick_rs

__all__ = ["PageScan", "has_empty_root", "scan_page"]

FULL_TEXT_BYTES: Final = 24 * 1024
SAMPLES: Final = 12
SAMPLE_BYTES: Final = 1536
EMPTY_ROOT_SCAN_BYTES: Final = 64 * 1024

# Pattern kinds.
_OPEN_SCRIPT, _OPEN_STYLE, _OPEN_NOSCRIPT, _OPEN_TEMPLATE = 1, 2, 3, 4
_CLOSE_SCRIPT, _CLOSE_STYLE, _CLOSE_TEMPLATE = 6, 7, 8
_BODY, _NEXT, _NUXT, _ANGULAR, _REACT, _ARTICLE, _MAIN, _LOADING = 10, 11, 12, 13, 14, 15, 16, 17
_DATA_URI = 18

_PATTERNS: Final[list[tuple[bytes, int]]] = [
    *((v, _OPEN_SCRIPT) for v in (b"<script", b"<SCRIPT", b"<Script")),
    *((v, _CLOSE_SCRIPT) for v in (b"script>", b"SCRIPT>", b"Script>")),
    *((v, _OPEN_STYLE) for v in (b"<style", b"<STYLE", b"<Style")),
    *((v, _CLOSE_STYLE) for v in (b"style>", b"STYLE>", b"Style>")),
    *((v, _OPEN_NOSCRIPT) for v in (b"<noscript", b"<NOSCRIPT")),
    (b"<template", _OPEN_TEMPLATE),
    (b"template>", _CLOSE_TEMPLATE),
    *((v, _BODY) for v in (b"<body", b"<BODY", b"<Body")),
    (b"__NEXT_DATA__", _NEXT),
    (b"__NUXT", _NUXT),
    (b"ng-app", _ANGULAR),
    (b"ng-controller", _ANGULAR),
    (b"data-reactroot", _REACT),
    *((v, _ARTICLE) for v in (b"<article", b"<ARTICLE")),
    *((v, _MAIN) for v in (b"<main", b"<MAIN")),
    (b"loading", _LOADING),
    (b"spinner", _LOADING),
    (b"Loading", _LOADING),
    (b";base64,", _DATA_URI),
]
_KINDS: Final = tuple(kind for _, kind in _PATTERNS)
_AC: Final = ahocorasick_rs.BytesAhoCorasick(
    [p for p, _ in _PATTERNS], matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST
)

_TAG: Final = re.compile(rb"<[^<>]*>")  # never spans a "<": linear on "<<<<" garbage
# Whitespace and UTF-8 continuation bytes: deleting both leaves one byte per non-space character.
_NOT_COUNTED: Final = b" \t\n\r\x0b\x0c" + bytes(range(0x80, 0xC0))
_TAG_END_BYTES: Final = frozenset(b" \t\n\r\x0c/>")
_ROOT_IDS = rb"root|app|__next|__nuxt|___gatsby|svelte|application|app-root|main-app|react-root|vue-app"
_EMPTY_ID_ROOT: Final = re.compile(
    rb"<(div|section|main|span)\b[^<>]{0,512}?\bid\s*=\s*[\"']?(?:"
    + _ROOT_IDS
    + rb")(?:[\"'\s][^<>]{0,512})?>\s{0,512}</\1\s*>",
    re.IGNORECASE,
)
# An empty custom element (<app-root></app-root>, <todo-app></todo-app>). Server-rendered
# pages use empty custom elements too (MathJax's <mjx-c>), so this one only counts when
# there is almost no visible text.
_EMPTY_CUSTOM: Final = re.compile(
    rb"<([a-z][a-z0-9]{0,64}-[a-z0-9-]{0,64})\b[^<>]{0,512}>\s{0,512}</\1\s*>", re.IGNORECASE
)


@dataclass(slots=True)
class PageScan:
    """What one pass over a page found."""

    markers: set[str] = field(default_factory=set)
    """Rule names of the markers present (``next_data``, ``article``, ``empty_root`` ...)."""
    text_chars: int = 0
    """Visible characters in the body, whitespace not counted (estimated on big pages)."""
    scripts: int = 0
    """Number of ``<script>`` elements."""
    hidden_bytes: int = 0
    """Bytes inside script, style, noscript, template elements and comments."""
    total_bytes: int = 0
    regions: list[tuple[int, int]] = field(default_factory=list)
    """Byte ranges of visible markup (the body minus hidden elements)."""


def _in_class_or_id(html: bytes, start: int) -> bool:
    """True when the word at ``start`` sits inside a ``class="..."`` or ``id="..."`` value."""
    seg = html[max(0, start - 80) : start]
    quote = max(seg.rfind(b'"'), seg.rfind(b"'"))
    if quote < 0 or b">" in seg[quote:] or b"<" in seg[quote:]:
        return False
    name = seg[:quote].rstrip().rstrip(b"=").rstrip().lower()
    return name.endswith((b"class", b" id", b"\tid", b"\nid"))


def _count(window: bytes) -> int:
    return len(_TAG.sub(b" ", window).translate(None, _NOT_COUNTED))


def _visible_chars(html: bytes, regions: list[tuple[int, int]]) -> int:
    size = sum(b - a for a, b in regions)
    if size <= FULL_TEXT_BYTES:
        return _count(b"".join([html[a:b] for a, b in regions]))
    counted = seen = 0
    step = size / SAMPLES
    target = 0.0
    offset = 0  # bytes of visible markup before the current region
    for a, b in regions:
        length = b - a
        while target < offset + length:
            at = a + int(target - offset)
            target += step
            window = html[at : min(b, at + SAMPLE_BYTES)]
            seen += len(window)
            # A window starting or ending inside a tag: that part is markup, no text.
            if html.rfind(b"<", a, at) > html.rfind(b">", a, at):
                window = window[window.find(b">") + 1 :] if b">" in window else b""
            lt = window.rfind(b"<")
            if lt > window.rfind(b">"):
                window = window[:lt]
            counted += _count(window)
        offset += length
    return counted * size // seen if seen else 0


def scan_page(html: bytes) -> PageScan:
    """Scan ``html`` once; see the module docstring for what is found and how."""
    out = PageScan(total_bytes=len(html))
    markers = out.markers
    kinds = _KINDS
    tag_end = _TAG_END_BYTES
    size = len(html)
    regions: list[tuple[int, int]] = []
    start = 0
    body_seen = False
    state = 0  # 0 = visible markup, else the _OPEN_* kind of the hidden element we are in
    hidden = hidden_from = scripts = 0
    for idx, s, e in _AC.find_matches_as_indexes(html):
        kind = kinds[idx]
        if state:
            # Inside a hidden element only its end tag (and the data markers) matter.
            if kind == _CLOSE_SCRIPT:
                if state == _OPEN_SCRIPT:
                    if html[s - 1] != 47:  # "/": not </script>
                        continue
                elif state != _OPEN_NOSCRIPT or html[s - 3 : s].lower() != b"/no":
                    continue
            elif kind in (_CLOSE_STYLE, _CLOSE_TEMPLATE):
                if html[s - 1] != 47 or state != (_OPEN_STYLE if kind == _CLOSE_STYLE else _OPEN_TEMPLATE):
                    continue
            else:
                if kind == _NEXT:
                    markers.add("next_data")
                elif kind == _NUXT:
                    markers.add("nuxt")
                continue
            state = 0
            start = e
            hidden += e - hidden_from
        elif kind <= _OPEN_TEMPLATE:
            if e >= size or html[e] not in tag_end:
                continue  # <scripts>, <styled-thing>: not the element we want
            if kind == _OPEN_SCRIPT:
                scripts += 1
                gt = html.find(b">", e, e + 4096)
                if gt > 0 and b"bundle" in html[e:gt].lower():
                    markers.add("script_bundle")
            elif kind == _OPEN_NOSCRIPT:
                markers.add("noscript")
            regions.append((start, s))
            state = kind
            hidden_from = s
        elif kind == _LOADING:
            if "loading_indicator" not in markers and _in_class_or_id(html, s):
                markers.add("loading_indicator")
        elif kind in (_ARTICLE, _MAIN):
            if e < size and html[e] in tag_end:
                markers.add("article" if kind == _ARTICLE else "main_content")
        elif kind == _DATA_URI:
            # An inline data: URI is markup, however long: cut it out of the visible regions
            # so that sampling cannot mistake a 60 KB attribute for text.
            end = html.find(b'"', e)
            alt = html.find(b"'", e)
            end = alt if end < 0 or 0 <= alt < end else end
            if end - e > 1024:
                regions.append((start, s))
                start = end
        elif kind == _BODY:
            if not body_seen and e < size and html[e] in tag_end:
                body_seen = True
                regions.clear()  # text before <body> (the title) is not page content
                gt = html.find(b">", e, e + 4096)
                start = gt + 1 if gt > 0 else e
        elif kind == _NEXT:
            markers.add("next_data")
        elif kind == _NUXT:
            markers.add("nuxt")
        elif kind == _ANGULAR:
            markers.add("angular")
        elif kind == _REACT:
            markers.add("react_root")
        # else: an end tag outside any hidden element (stray): nothing to do
    if state:
        hidden += size - hidden_from
    else:
        regions.append((start, size))
    out.scripts = scripts
    out.hidden_bytes = hidden
    out.text_chars = _visible_chars(html, regions)
    out.regions = regions
    return out


def has_empty_root(html: bytes, scan: PageScan, *, custom_elements: bool) -> bool:
    """An empty SPA mount point in the visible markup (first 64 KB of it).

    ``custom_elements`` also counts an empty custom element as a mount point.
    """
    budget = EMPTY_ROOT_SCAN_BYTES
    for a, b in scan.regions:
        if budget <= 0:
            break
        end = min(b, a + budget)
        if end > a and (
            _EMPTY_ID_ROOT.search(html, a, end) or (custom_elements and _EMPTY_CUSTOM.search(html, a, end))
        ):
            return True
        budget -= end - a
    return False
