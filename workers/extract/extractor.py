"""``extract()``: one parse, then metadata, links, robots, main content, Markdown and text,
language, hashes and quality signals."""

from __future__ import annotations

import codecs
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from selectolax.lexbor import LexborHTMLParser

from workers.extract.bounds import flattened, scan
from workers.extract.charset import decode_html, sniff_encoding
from workers.extract.content import INVISIBLE_TAGS, main_content
from workers.extract.language import detect_language
from workers.extract.links import Resolver, base_url, outlinks
from workers.extract.markdown import plain, render
from workers.extract.metadata import read_metadata
from workers.extract.quality import assess
from workers.extract.robots import directives, meta_values
from workers.extract.simhash import simhash
from workers.extract.text import normalise, text_hash, tokens

__all__ = ["DEFAULT_MAX_DEPTH", "DEFAULT_MAX_NODES", "DEFAULT_MAX_OUTLINKS", "Extracted", "extract"]

DEFAULT_MAX_OUTLINKS = 10_000
DEFAULT_MAX_NODES = 200_000
DEFAULT_MAX_DEPTH = 2_000


@dataclass(slots=True)
class Extracted:
    """Everything the fast path extracts from one page."""

    title: str | None = None
    description: str | None = None
    lang: str | None = None
    """The language the page declares (``<html lang>`` …)."""
    canonical_url: str | None = None
    published_time: str | None = None
    outlinks: list[str] = field(default_factory=list)
    """Absolute http(s) links of the whole page, fragments dropped, deduplicated, in order, capped."""
    outlinks_nofollow: list[str] = field(default_factory=list)
    """The subset of ``outlinks`` marked rel=nofollow/ugc/sponsored (see workers/extract/links.py)."""
    outlinks_total: int = 0
    """Distinct links before the cap."""
    robots: list[str] = field(default_factory=list)
    """Robots directives for us from meta tags and the X-Robots-Tag values passed in."""
    markdown: str = ""
    """The main content as Markdown."""
    text: str = ""
    """The main content as plain text (what the hashes and the word count are computed on)."""
    word_count: int = 0
    text_hash: str = ""
    """blake2b-128 hex of the normalised main text (NFC, case-folded, whitespace collapsed)."""
    simhash: int = 0
    """64-bit SimHash of the main text's tokens, an unsigned int < 2**64."""
    language: str | None = None
    """Detected language of the main text (workers/extract/language.py)."""
    language_score: float | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    """Extraction signals (workers/extract/quality.py)."""
    quality_flags: list[str] = field(default_factory=list)
    """``name: reason`` for each implausible-extraction finding."""
    encoding: str = "utf-8"
    """The charset the bytes were decoded with."""


def _source(html: bytes | str, charset: str | None, content_type: str | None) -> tuple[bytes | str, str]:
    if isinstance(html, str):
        # lexbor then sees invalid UTF-8 for lone surrogates and replaces them: every
        # string downstream is valid Unicode.
        return html.encode("utf-8", "surrogatepass"), "utf-8"
    encoding = sniff_encoding(html, charset=charset, content_type=content_type)
    if encoding != "utf-8":
        return decode_html(html, charset=charset, content_type=content_type).text, encoding
    if html.startswith(codecs.BOM_UTF8):
        return html[len(codecs.BOM_UTF8) :], encoding
    return html, encoding  # UTF-8 goes to lexbor as bytes (invalid sequences become U+FFFD)


def extract(
    html: bytes | str,
    *,
    url: str,
    final_url: str | None = None,
    charset: str | None = None,
    content_type: str | None = None,
    content_language: str | None = None,
    x_robots_tags: Sequence[str] = (),
    robots_token: str = "streamcrawl",
    max_outlinks: int | None = DEFAULT_MAX_OUTLINKS,
    max_nodes: int = DEFAULT_MAX_NODES,
    max_depth: int = DEFAULT_MAX_DEPTH,
) -> Extracted:
    """Extract metadata, outlinks and main content from one HTML page.

    ``url``/``final_url``: the requested and the post-redirect URL (links resolve against
    ``<base href>``, else ``final_url``, else ``url``). ``charset``, ``content_type``,
    ``content_language`` and ``x_robots_tags`` are the transport's hints. Bounds: at most
    ``max_outlinks`` outlinks; a page with more than ``max_nodes`` tags skips main-content
    scoring and Markdown (its text comes straight from the parser); one with block elements nested deeper than ``max_depth`` is parsed without
    them (workers/extract/bounds.py). Never raises on malformed HTML or an unknown charset;
    an empty page gives an empty result.
    """
    source, encoding = _source(html, charset, content_type)
    raw = source if isinstance(source, bytes) else source.encode("utf-8", "surrogatepass")
    shape = scan(raw)
    if shape.depth > max_depth:
        source = flattened(raw)
    tree = LexborHTMLParser(source)
    page_url = final_url or url
    resolver = Resolver(base_url(tree, page_url))
    meta = read_metadata(tree, resolver, content_language=content_language)
    links = outlinks(tree, resolver, max_links=max_outlinks)
    robots = directives(meta=meta_values(tree, robots_token), headers=x_robots_tags, token=robots_token)
    tree.strip_tags(INVISIBLE_TAGS)
    body = tree.body
    visible_chars = len(body.text(strip=True)) if body is not None else 0
    bounded = shape.tags <= max_nodes
    content = main_content(
        tree,
        reparse=lambda: LexborHTMLParser(source),
        page_chars=visible_chars,
        score=bounded,
        invisible_removed=True,
    )
    written = render(content.nodes, resolver) if bounded else plain(content.nodes)
    text = written.text
    norm = normalise(text)
    words = tokens(norm)
    detected = detect_language(text)
    quality, flags = assess(
        content=content,
        written=written,
        shape=shape,
        visible_chars=visible_chars,
        words=len(words),
        language_reliable=detected.reliable,
        max_nodes=max_nodes,
        max_depth=max_depth,
    )
    return Extracted(
        title=meta.title,
        description=meta.description,
        lang=meta.lang,
        canonical_url=meta.canonical_url,
        published_time=meta.published_time,
        outlinks=links.urls,
        outlinks_nofollow=links.nofollow,
        outlinks_total=links.total,
        robots=robots,
        markdown=written.markdown,
        text=text,
        word_count=len(words),
        text_hash=text_hash(norm),
        simhash=simhash(words),
        language=detected.language,
        language_score=detected.score,
        quality=quality,
        quality_flags=flags,
        encoding=encoding,
    )
