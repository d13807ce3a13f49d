"""``extract()``: one parse, then metadata, links, main content, Markdown and hashes."""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from selectolax.lexbor import LexborHTMLParser

from workers.extract.charset import decode_html, sniff_encoding
from workers.extract.content import main_content
from workers.extract.links import Resolver, base_url, outlinks
from workers.extract.markdown import to_markdown
from workers.extract.metadata import read_metadata
from workers.extract.simhash import simhash
from workers.extract.text import normalise, text_hash, tokens

__all__ = ["Extracted", "extract"]


@dataclass(slots=True)
class Extracted:
    """Everything the fast path extracts from one page."""

    title: str | None = None
    description: str | None = None
    lang: str | None = None
    canonical_url: str | None = None
    published_time: str | None = None
    outlinks: list[str] = field(default_factory=list)
    """Absolute http(s) links of the whole page, fragments dropped, deduplicated, in order."""
    markdown: str = ""
    """The main content as Markdown."""
    text: str = ""
    """The main content as plain text (what the hashes and the word count are computed on)."""
    word_count: int = 0
    text_hash: str = ""
    """blake2b-128 hex of the normalised main text (NFKC, case-folded, whitespace collapsed)."""
    simhash: int = 0
    """64-bit SimHash of the main text's tokens, an unsigned int < 2**64."""
    encoding: str = "utf-8"
    """The charset the bytes were decoded with."""


def extract(
    html: bytes | str,
    *,
    url: str,
    final_url: str | None = None,
    charset: str | None = None,
    content_type: str | None = None,
    content_language: str | None = None,
) -> Extracted:
    """Extract metadata, outlinks and main content from one HTML page.

    ``url``/``final_url``: the requested and the post-redirect URL (links resolve against
    ``<base href>``, else ``final_url``, else ``url``). ``charset``, ``content_type`` and
    ``content_language`` are the transport's hints. Never raises on malformed HTML or an
    unknown charset; an empty page gives an empty result.
    """
    source: bytes | str = html
    encoding = "utf-8"
    if isinstance(html, str):
        # lexbor then sees invalid UTF-8 for lone surrogates and replaces them: every
        # string downstream is valid Unicode.
        source = html.encode("utf-8", "surrogatepass")
    else:
        encoding = sniff_encoding(html, charset=charset, content_type=content_type)
        if encoding != "utf-8":
            source = decode_html(html, charset=charset, content_type=content_type).text
        elif html.startswith(codecs.BOM_UTF8):
            source = html[len(codecs.BOM_UTF8) :]
        # UTF-8 goes to lexbor as bytes (invalid sequences become U+FFFD): no decode/encode.
    tree = LexborHTMLParser(source)
    page_url = final_url or url
    resolver = Resolver(base_url(tree, page_url))
    meta = read_metadata(tree, resolver, content_language=content_language)
    links = outlinks(tree, resolver)
    content = main_content(tree, reparse=lambda: LexborHTMLParser(source))
    markdown = to_markdown(content.nodes, resolver)
    text = content.text
    norm = normalise(text)
    words = tokens(norm)
    return Extracted(
        title=meta.title,
        description=meta.description,
        lang=meta.lang,
        canonical_url=meta.canonical_url,
        published_time=meta.published_time,
        outlinks=links,
        markdown=markdown,
        text=text,
        word_count=len(words),
        text_hash=text_hash(norm),
        simhash=simhash(words),
        encoding=encoding,
    )
