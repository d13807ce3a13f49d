"""Context-sensitive pruning of the written main content, block by block (after jusText).

The Readability pass picks one element and cleans it; what it keeps around the article
inside that element (a trail of "Trackbacks | No comments | Post a comment", a "related"
block of headlines with their dates, a line of tags) is made of blocks that are each
mostly links or short. jusText (Pomikálek, 2011) classifies every block by its length and
link density and decides the ambiguous ones by their neighbours. Here the blocks are the
paragraph-separated segments the Markdown writer produced (markers still in):

* **bad**: at least ``BAD_LINK_DENSITY`` of the text is link text. List and table blocks
  are exempt (the writer tests them item by item and row by row: a reference list is
  mostly links and still content), and so are headings (a post title is often a link);
  a block under ``GOOD_CHARS`` that holds a copyright notice is bad too;
* **good**: at least ``GOOD_CHARS`` characters with under ``GOOD_LINK_DENSITY`` link text;
* **short**: under ``SHORT_CHARS`` characters; otherwise **medium**.

Then, as jusText does, with the edges of the content counted as bad: a medium block whose
nearest decided neighbour (good or bad) on either side is good is good; a short block
whose nearest decided neighbours on both sides are bad is bad. Bad blocks are dropped.
Headings are never dropped. Content without a good block is left as it is (a link
directory, a table of contents, a short page). Calibrated on CleanEval (bench/quality.py
TUNED_ON) with jusText's published defaults as the starting point.

Before the classes are decided, an announced trail ("Related stories:", "You may also
like" and the teasers after it) is cut whatever its blocks look like
(workers/extract/trailers.py).
"""

from __future__ import annotations

import re
from typing import Final

from workers.extract.trailers import cut_trailers

__all__ = ["BAD_LINK_DENSITY", "GOOD_CHARS", "GOOD_LINK_DENSITY", "SHORT_CHARS", "prune"]

BAD_LINK_DENSITY: Final = 0.5
GOOD_LINK_DENSITY: Final = 0.2
GOOD_CHARS: Final = 200
SHORT_CHARS: Final = 70

_PARA: Final = "\x03\x03"
_LINK: Final = re.compile(r"\x04\[\x05(.*?)\x04\]\(")
_MARKDOWN_PART: Final = re.compile(r"\x04[^\x04\x05\x06]*\x06")
_MARKDOWN_ONLY: Final = re.compile(r"\x04[^\x04\x05\x06]*\x05")
_HEADING: Final = re.compile(r"\A\x04#{1,6} \x05")
_LISTED: Final = re.compile(r"\A(?:\x01|\x04(?:- |\d+\. |\| )\x05)")
"""A list item, its continuation (indented) or a table row starts the segment."""
_NOTICE: Final = re.compile(r"(?:©|\(c\)|\bcopyright)\s*(?:©\s*)?(?:19|20)\d\d|all rights reserved", re.I)
"""A copyright notice: ``© 2004``, ``Copyright © 1996-99``, ``(c) 2010``, ``All rights reserved``."""
_BAD, _SHORT, _MEDIUM, _GOOD, _EXEMPT = 0, 1, 2, 3, 4


def _chars(segment: str) -> int:
    # Markup starts with \x04: most segments (plain paragraphs) have none, so no regex pass.
    text = _MARKDOWN_ONLY.sub("", _MARKDOWN_PART.sub("", segment)) if "\x04" in segment else segment
    return len(text.replace("\x05", "").replace("\x03", " ").strip())


def _kind(segment: str, size: int) -> int:
    if _HEADING.match(segment):
        return _EXEMPT
    links = sum(_chars(m) for m in _LINK.findall(segment)) if "\x04[" in segment else 0
    density = links / size
    if density >= BAD_LINK_DENSITY and _LISTED.match(segment) is None:
        return _BAD
    if size < GOOD_CHARS and _NOTICE.search(segment):
        return _BAD
    if size >= GOOD_CHARS and density < GOOD_LINK_DENSITY:
        return _GOOD
    return _SHORT if size < SHORT_CHARS else _MEDIUM


def _nearest(kinds: list[int]) -> tuple[list[int], list[int]]:
    """For each block, the nearest good-or-bad class before it and after it (edges are bad);
    two linear passes, so a page of thousands of short blocks stays linear."""
    before, after = [_BAD] * len(kinds), [_BAD] * len(kinds)
    last = _BAD
    for i, kind in enumerate(kinds):
        before[i] = last
        if kind in (_BAD, _GOOD):
            last = kind
    last = _BAD
    for i in range(len(kinds) - 1, -1, -1):
        after[i] = last
        if kinds[i] in (_BAD, _GOOD):
            last = kinds[i]
    return before, after


def prune(body: str) -> str:
    """``body`` (the writer's output, paragraphs separated by ``\\x03\\x03``) without the
    blocks that their link density, length and context mark as boilerplate."""
    if _PARA not in body:
        return body
    segments = body.split(_PARA)
    sizes = [_chars(s) for s in segments]
    kept = cut_trailers(segments, sizes)
    if len(kept) != len(segments):
        segments = [segments[i] for i in kept]
        sizes = [sizes[i] for i in kept]
        body = _PARA.join(segments)
    kinds = [_kind(s, size) if size else _EXEMPT for s, size in zip(segments, sizes, strict=True)]
    if _GOOD not in kinds:
        return body
    before, after = _nearest(kinds)
    for i, kind in enumerate(kinds):  # near-good next to good is good
        if kind == _MEDIUM and _GOOD in (before[i], after[i]):
            kinds[i] = _GOOD
    before, after = _nearest(kinds)
    final = list(kinds)
    for i, kind in enumerate(kinds):  # short between boilerplate is boilerplate
        if kind == _SHORT and before[i] == _BAD and after[i] == _BAD:
            final[i] = _BAD
    if _BAD not in final:
        return body
    return _PARA.join(s for s, kind in zip(segments, final, strict=True) if kind != _BAD)
