"""Markdown and plain text from the main-content nodes (a small html2text over the selectolax tree).

Why not html2text itself: measured on the readability set's main content alone
(``expected.html``, ~19 KB a page) html2text runs at ~130 pages/s, i.e. 7.7 ms a page,
more than the whole fast path's budget (5 ms a page for >= 200 pages/s). Walking the
already parsed content nodes costs well under a millisecond. The output follows
html2text's conventions: ``#`` headings, ``**bold**``, ``*em*``, `` `code` ``, fenced
``pre``, ``-``/``1.`` lists (nested by 4 spaces), ``>`` quotes, ``[text](url)`` links
and ``![alt](src)`` images with absolute URLs, pipe tables for data tables.

**One walk, two outputs.** Markup only Markdown has is written as ``\x04<Markdown>\x05``
(``**`` becomes ``\x04**\x05``, a list marker ``\x04- \x05``), markup with a plain-text
form as ``\x04<Markdown>\x06<text>\x05`` (a table's `` | ``). The Markdown keeps the
Markdown parts, the plain text (what a WET record holds: the same blocks and lines, no
markup, no link targets, no images) the text parts; both by constant-replacement regexes
(a group template costs a Python call per match).

**Link blocks.** A block (paragraph, list item, table row, div …) whose text is mostly link
text (``LINK_BLOCK_DENSITY``) is navigation, a "related articles" list, a tag cloud or a
share bar, not main content: it is dropped from both outputs (jusText and trafilatura
apply the same link-density test per block). Headings are exempt (a post title is often
a link), and so is text inside ``<pre>``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from selectolax.lexbor import LexborNode

from workers.extract.links import Resolver

__all__ = ["LINK_BLOCK_DENSITY", "Written", "plain", "render"]

_BLOCKS: Final = frozenset(
    [
        "p",
        "div",
        "section",
        "article",
        "main",
        "header",
        "footer",
        "aside",
        "nav",
        "figure",
        "figcaption",
        "address",
        "form",
        "fieldset",
        "details",
        "summary",
        "dl",
        "dt",
        "dd",
        "center",
        "hgroup",
        "tbody",
        "thead",
        "tfoot",
        "td",
        "th",
        "caption",
        "li",
    ]
)
_HEADINGS: Final = {"h1": "#", "h2": "##", "h3": "###", "h4": "####", "h5": "#####", "h6": "######"}
_INLINE_MARKS: Final = {"strong": "**", "b": "**", "em": "*", "i": "*", "code": "`", "kbd": "`", "tt": "`"}
_SKIP: Final = frozenset({"script", "style", "noscript", "template", "head", "title", "meta", "link"})
# Structure is written with private markers and whitespace is collapsed once at the end,
# not per text node (measured 3x cheaper):
_BR: Final = "\x03"  # a line break
_PARA: Final = "\x03\x03"  # a blank line
_INDENT: Final = "\x01"  # list indentation
_CODE: Final = "\x02"  # \x02<n>\x02 stands for the n-th <pre> block, kept verbatim
_CODE_REF: Final = re.compile(r"\x02(\d+)\x02")
_TEXT_PART: Final = re.compile(r"\x06[^\x04\x05\x06]*\x05")
_MARKDOWN_PART: Final = re.compile(r"\x04[^\x04\x05\x06]*\x06")
_MARKDOWN_ONLY: Final = re.compile(r"\x04[^\x04\x05\x06]*\x05")
_STRAY: Final = re.compile(r"[\x01-\x06]")
LINK_BLOCK_DENSITY: Final = 0.9
"""A block whose link text is at least this share of its text is dropped."""
_LINK_BLOCKS: Final = frozenset({"p", "div", "td", "dd", "dt", "section", "center", "address", "form"})
"""Elements of _BLOCKS tested as link blocks (``li`` and ``tr`` are tested where they are written)."""


def _md(markdown: str) -> str:
    """Markup that only the Markdown output has."""
    return f"\x04{markdown}\x05"


def _both(markdown: str, text: str) -> str:
    return f"\x04{markdown}\x06{text}\x05"


@dataclass(frozen=True, slots=True)
class Written:
    """The main content written out, with what the writer counted on the way."""

    markdown: str
    text: str
    chars: int = 0
    """Characters of text met (dropped link blocks included)."""
    link_chars: int = 0
    """Of those, characters inside links."""
    dropped_blocks: int = 0
    """Link blocks dropped."""


def _finish(text: str) -> str:
    """Collapse whitespace; keep the markers (lines split on _BR)."""
    # str.split() is ~10x faster than a \s+ regex and leaves the \x01-\x03 markers alone.
    text = " ".join(text.split()).replace(" " + _BR, _BR).replace(_BR + " ", _BR)
    while _BR * 3 in text:  # cheaper than a regex on these short runs
        text = text.replace(_BR * 4, _PARA).replace(_BR * 3, _PARA)
    return text.strip(" " + _BR)


_MAX_DEPTH: Final = 120
"""Nesting depth past which a subtree is written as plain text (the writer recurses; broken
pages with hundreds of unclosed <div>s would otherwise hit Python's recursion limit)."""


class _Writer:
    __slots__ = ("chars", "code", "depth", "drop_links", "dropped", "dropped_chars", "link_chars", "resolver")

    def __init__(self, resolver: Resolver, *, drop_links: bool) -> None:
        self.resolver = resolver
        self.code: list[str] = []
        self.depth = 0
        self.drop_links = drop_links
        self.chars = 0
        self.link_chars = 0
        self.dropped = 0
        self.dropped_chars = 0

    def link_block(self, chars: int, links: int) -> bool:
        """Was the block just written (``chars``/``links`` counters at its start) a link block?"""
        if not self.drop_links:
            return False
        text = self.chars - chars
        if text <= 0 or (self.link_chars - links) < LINK_BLOCK_DENSITY * text:
            return False
        self.dropped += 1
        self.dropped_chars += text
        return True

    def render(self, node: LexborNode) -> str:
        out: list[str] = []
        self.children(node, out)
        return "".join(out)

    def line(self, node: LexborNode) -> str:
        """The node's content on one line."""
        return " ".join(self.render(node).replace(_BR, " ").split())

    def lines(self, node: LexborNode) -> list[str]:
        return _finish(self.render(node)).split(_BR)

    def wrapped(self, node: LexborNode, before: str, after: str) -> str:
        """``before + text + after``, whitespace around the text kept outside the marks."""
        raw = self.render(node)
        text = raw.strip()
        if not text:
            return raw
        lead = " " if raw[0].isspace() else ""
        trail = " " if raw[-1].isspace() else ""
        return f"{lead}{before}{text}{after}{trail}"

    def children(self, node: LexborNode, out: list[str]) -> None:
        child = node.child
        while child is not None:
            tag = child.tag or "-"
            if tag == "-text":
                text = child.text_content
                if text:
                    out.append(text)
                    self.chars += len(text.strip())
            elif tag[0] != "-":  # not a comment or another special node
                self.element(child, out, tag)
            child = child.next

    def element(self, node: LexborNode, out: list[str], tag: str | None = None) -> None:
        if self.depth >= _MAX_DEPTH:
            text = node.text(deep=True)
            self.chars += len(text)
            out.append(f" {text} ")
            return
        self.depth += 1
        try:
            self._element(node, out, tag or node.tag or "")
        finally:
            self.depth -= 1

    def _element(self, node: LexborNode, out: list[str], tag: str) -> None:
        if tag in _BLOCKS:
            start, chars, links = len(out), self.chars, self.link_chars
            out.append(_PARA)
            self.children(node, out)
            out.append(_PARA)
            if tag in _LINK_BLOCKS and self.link_block(chars, links):
                del out[start:]
                out.append(_PARA)
        elif tag == "a":
            href = self.resolver.resolve(node.attrs.get("href"))
            chars = self.chars
            out.append(self.wrapped(node, _md("["), _md(f"]({href})")) if href else self.render(node))
            self.link_chars += self.chars - chars
        elif tag in _INLINE_MARKS:
            mark = _md(_INLINE_MARKS[tag])
            out.append(self.wrapped(node, mark, mark))
        elif tag in _HEADINGS:
            links = self.link_chars
            text = self.line(node)
            self.link_chars = links  # a linked heading (a post title) is not link text
            if text:
                out.append(f"{_PARA}{_md(_HEADINGS[tag] + ' ')}{text}{_PARA}")
        elif tag == "br":
            out.append(_BR)
        elif tag == "tr":
            start, chars, links = len(out), self.chars, self.link_chars
            out.append(_BR)
            self.children(node, out)
            out.append(_BR)
            if self.link_block(chars, links):
                del out[start:]
        elif tag == "img":
            attrs = node.attributes
            src = attrs.get("src") or attrs.get("data-src") or ""
            url = self.resolver.resolve(src) if not src.startswith("data:") else None
            if url:
                alt = " ".join((attrs.get("alt") or "").split())
                out.append(_md(f"![{alt}]({url})"))
        elif tag == "pre":
            code = node.text(deep=True).strip("\n")
            if code.strip():
                self.chars += len(code)
                self.code.append(code)
                out.append(
                    f"{_PARA}{_md('```')}{_BR}{_CODE}{len(self.code) - 1}{_CODE}{_BR}{_md('```')}{_PARA}"
                )
        elif tag in ("ul", "ol"):
            self.items(node, out, ordered=tag == "ol")
        elif tag == "blockquote":
            lines = [line for line in self.lines(node)]
            if any(lines):
                quoted = _BR.join(f"{_md('> ')}{line}" if line else _md(">") for line in lines)
                out.append(f"{_PARA}{quoted}{_PARA}")
        elif tag == "table":
            self.table(node, out)
        elif tag == "hr":
            out.append(f"{_PARA}{_md('---')}{_PARA}")
        elif tag not in _SKIP:
            self.children(node, out)

    def items(self, node: LexborNode, out: list[str], *, ordered: bool) -> None:
        out.append(_PARA)
        number = 1
        child = node.child
        while child is not None:
            if child.is_element_node:
                if child.tag == "li":
                    chars, links = self.chars, self.link_chars
                    lines = self.lines(child)
                    if (lines[0] or len(lines) > 1) and not self.link_block(chars, links):
                        marker = _md(f"{number}. " if ordered else "- ")
                        number += 1
                        rest = [(_INDENT + line) if line else "" for line in lines[1:]]
                        out.append(_BR.join([marker + lines[0], *rest]) + _BR)
                else:
                    self.element(child, out)
            child = child.next
        out.append(_BR)

    def table(self, node: LexborNode, out: list[str]) -> None:
        rows = [r for r in node.css("tr") if _nearest_table(r) == node.mem_id]
        if not rows or len(node.css("table")) > 1:
            self.children(node, out)  # layout table, or nested tables: plain blocks
            return
        out.append(_PARA)
        first = True
        for row in rows:
            cells = []
            chars, links = self.chars, self.link_chars
            cell = row.child
            while cell is not None:
                if cell.tag in ("td", "th"):
                    cells.append(self.line(cell).replace("|", _both("\\|", "|")))
                cell = cell.next
            if self.link_block(chars, links):
                continue
            out.append(_md("| ") + _both(" | ", " ").join(cells) + _md(" |") + _BR)
            if first:
                out.append(_md("|" + " --- |" * len(cells) + _BR))
                first = False
        out.append(_BR)


def _nearest_table(node: LexborNode) -> int | None:
    parent = node.parent
    while parent is not None:
        if parent.tag == "table":
            return parent.mem_id
        parent = parent.parent
    return None


def _write(nodes: list[LexborNode], resolver: Resolver, *, drop_links: bool) -> tuple[_Writer, list[str]]:
    writer = _Writer(resolver, drop_links=drop_links)
    out: list[str] = []
    for node in nodes:
        if node.is_element_node:
            out.append(_PARA)
            writer.element(node, out)
            out.append(_PARA)
    return writer, out


def render(nodes: list[LexborNode], resolver: Resolver, *, drop_link_blocks: bool = True) -> Written:
    """Markdown and plain text of ``nodes`` (the main content, in document order).

    When link blocks would be most of the text, the links are the content (a link
    directory, a table of contents): the nodes are written again with them kept."""
    writer, out = _write(nodes, resolver, drop_links=drop_link_blocks)
    if writer.dropped_chars * 2 > writer.chars:
        writer, out = _write(nodes, resolver, drop_links=False)
    body = _finish("".join(out)).replace(_BR, "\n")
    both = "\x06" in body
    markdown = _TEXT_PART.sub("", body) if both else body
    markdown = markdown.replace("\x04", "").replace("\x05", "").replace(_INDENT, "    ")
    text = _MARKDOWN_PART.sub("", body) if both else body
    text = _MARKDOWN_ONLY.sub("", text).replace("\x05", "").replace(_INDENT, "")
    if "\n " in text or " \n" in text:
        text = "\n".join(line.strip() for line in text.split("\n"))
    while "\n\n\n" in text:  # lines that held only markup
        text = text.replace("\n\n\n\n", "\n\n").replace("\n\n\n", "\n\n")
    text = text.strip("\n")
    if writer.code:
        code = writer.code
        markdown = _CODE_REF.sub(lambda m: code[int(m.group(1))], markdown)
        text = _CODE_REF.sub(lambda m: code[int(m.group(1))], text)
    if "\x04" in body or "\x05" in body or "\x06" in body:  # markers from the page's own text
        markdown, text = _STRAY.sub("", markdown), _STRAY.sub("", text)
    return Written(
        markdown=markdown,
        text=text,
        chars=writer.chars,
        link_chars=writer.link_chars,
        dropped_blocks=writer.dropped,
    )


def plain(nodes: list[LexborNode]) -> Written:
    """Text of ``nodes`` straight from the parser (one line per text node), as both outputs:
    for pages over the node cap, where even a linear walk in Python is too slow."""
    lines = (line.strip() for n in nodes for line in n.text(separator="\n").split("\n"))
    text = "\n".join(line for line in lines if line)
    return Written(markdown=text, text=text, chars=len(text))
