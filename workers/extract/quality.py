"""Quality signals of one extraction, and flags for the implausible ones (no silent bad
extractions).

Signals (``ProcessedPage.quality``, all JSON-able): ``method`` and ``block`` (how the main
content was chosen and which element), ``text_chars``, ``visible_chars`` (the body's text
without scripts and styles) and their ratio ``coverage``, ``article_chars`` (the longest
``<article>``/``<main>``; measured only when the main text is under 500 characters, else
None), ``link_density`` (link text / text of the chosen content before
link blocks were dropped), ``link_blocks_dropped``, ``tags`` and ``depth`` (from the byte
scan), ``language_reliable``.

Flags (``ProcessedPage.quality_flags``), each ``"name: reason"``:

- ``empty_main_text``: no word of main text although the page shows text;
- ``article_ignored``: the main text is implausibly short beside the page's
  ``<article>``/``<main>`` (``content.implausible``) even after the fallbacks;
- ``boilerplate_block``: the chosen element is named like navigation, a footer, a sidebar or
  comments (``unlikely`` in Readability's terms, or a negative class);
- ``link_heavy``: most of the main text is link text;
- ``fallback``: a fallback method chose the content (the primary one yielded nothing or
  too little);
- ``node_cap`` / ``deep_nesting``: the page was bounded (see workers/extract/bounds.py).
"""

from __future__ import annotations

from typing import Any, Final

from workers.extract.bounds import Shape
from workers.extract.content import MainContent, implausible
from workers.extract.markdown import Written

__all__ = ["assess"]

_VISIBLE_MIN: Final = 500
_LINK_HEAVY: Final = 0.5


def assess(
    *,
    content: MainContent,
    written: Written,
    shape: Shape,
    visible_chars: int,
    words: int,
    language_reliable: bool,
    max_nodes: int,
    max_depth: int,
) -> tuple[dict[str, Any], list[str]]:
    """(signals, flags) of one extraction."""
    text_chars = len(written.text)
    article_chars = content.article_chars
    density = written.link_chars / written.chars if written.chars else 0.0
    signals: dict[str, Any] = {
        "method": content.method,
        "block": content.block,
        "text_chars": text_chars,
        "visible_chars": visible_chars,
        "coverage": round(min(text_chars / visible_chars, 1.0), 3) if visible_chars else 0.0,
        "article_chars": article_chars,
        "link_density": round(density, 3),
        "link_blocks_dropped": written.dropped_blocks,
        "tags": shape.tags,
        "depth": shape.depth,
        "language_reliable": language_reliable,
    }
    flags = []
    if words == 0 and visible_chars >= _VISIBLE_MIN:
        flags.append(f"empty_main_text: no main text although the page shows {visible_chars:,} characters")
    if article_chars is not None and implausible(text_chars, article_chars):
        flags.append(
            f"article_ignored: main text has {text_chars:,} characters, the page's <article>/<main> {article_chars:,}"
        )
    if content.unlikely_block and words:
        flags.append(
            f"boilerplate_block: the chosen element {content.block} looks like navigation or a footer"
        )
    if density > _LINK_HEAVY and words:
        flags.append(f"link_heavy: {density:.0%} of the main text is link text")
    if content.method in ("article", "body"):
        flags.append(f"fallback: main content taken by the {content.method!r} method")
    if shape.tags > max_nodes:
        flags.append(f"node_cap: {shape.tags:,} tags > {max_nodes:,}; main-content scoring skipped")
    if shape.depth > max_depth:
        flags.append(
            f"deep_nesting: block elements nested ~{shape.depth:,} deep > {max_depth:,}; parsed flattened"
        )
    return signals, flags
