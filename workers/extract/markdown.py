"""Markdown from the main-content nodes (a small html2text over the selectolax tree).

Why not html2text itself: measured on the readability set's main content alone
(``expected.html``, ~19 KB a page) html2text runs at ~130 pages/s, i.e. 7.7 ms a page,
more than the whole fast path's budget (5 ms a page for >= 200 pages/s). Walking the
already parsed content nodes costs well under a millisecond. The output follows
html2text's conventions: ``#`` headings, ``**bold**``, ``*em*``, `` `code` ``, fenced
``pre``, ``-``/``1.`` lists (nested by 4 spaces), ``>`` quotes, ``[text](url)`` links
and ``![alt](src)`` images with absolute URLs, pipe tables for data tables.
"""

from __future__ import annotations

import re
from typing import Final

from selectolax.lexbor import LexborNode

from workers.extract.links import Resolver

__all__ = ["to_markdown"]

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
    __slots__ = ("code", "depth", "resolver")

    def __init__(self, resolver: Resolver) -> None:
        self.resolver = resolver
        self.code: list[str] = []
        self.depth = 0

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
            elif tag[0] != "-":  # not a comment or another special node
                self.element(child, out, tag)
            child = child.next

    def element(self, node: LexborNode, out: list[str], tag: str | None = None) -> None:
        if self.depth >= _MAX_DEPTH:
            out.append(f" {node.text(deep=True)} ")
            return
        self.depth += 1
        try:
            self._element(node, out, tag or node.tag or "")
        finally:
            self.depth -= 1

    def _element(self, node: LexborNode, out: list[str], tag: str) -> None:
        if tag in _BLOCKS:
            out.append(_PARA)
            self.children(node, out)
            out.append(_PARA)
        elif tag == "a":
            href = self.resolver.resolve(node.attrs.get("href"))
            out.append(self.wrapped(node, "[", f"]({href})") if href else self.render(node))
        elif tag in _INLINE_MARKS:
            mark = _INLINE_MARKS[tag]
            out.append(self.wrapped(node, mark, mark))
        elif tag in _HEADINGS:
            text = self.line(node)
            if text:
                out.append(f"{_PARA}{_HEADINGS[tag]} {text}{_PARA}")
        elif tag == "br":
            out.append(_BR)
        elif tag == "tr":
            out.append(_BR)
            self.children(node, out)
            out.append(_BR)
        elif tag == "img":
            attrs = node.attributes
            src = attrs.get("src") or attrs.get("data-src") or ""
            url = self.resolver.resolve(src) if not src.startswith("data:") else None
            if url:
                alt = " ".join((attrs.get("alt") or "").split())
                out.append(f"![{alt}]({url})")
        elif tag == "pre":
            code = node.text(deep=True).strip("\n")
            if code.strip():
                self.code.append(code)
                out.append(f"{_PARA}```{_BR}{_CODE}{len(self.code) - 1}{_CODE}{_BR}```{_PARA}")
        elif tag in ("ul", "ol"):
            self.items(node, out, ordered=tag == "ol")
        elif tag == "blockquote":
            lines = [line for line in self.lines(node)]
            if any(lines):
                quoted = _BR.join(f"> {line}" if line else ">" for line in lines)
                out.append(f"{_PARA}{quoted}{_PARA}")
        elif tag == "table":
            self.table(node, out)
        elif tag == "hr":
            out.append(f"{_PARA}---{_PARA}")
        elif tag not in _SKIP:
            self.children(node, out)

    def items(self, node: LexborNode, out: list[str], *, ordered: bool) -> None:
        out.append(_PARA)
        number = 1
        child = node.child
        while child is not None:
            if child.is_element_node:
                if child.tag == "li":
                    lines = self.lines(child)
                    if lines[0] or len(lines) > 1:
                        marker = f"{number}. " if ordered else "- "
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
        for index, row in enumerate(rows):
            cells = []
            cell = row.child
            while cell is not None:
                if cell.tag in ("td", "th"):
                    cells.append(self.line(cell).replace("|", "\\|"))
                cell = cell.next
            out.append("| " + " | ".join(cells) + " |" + _BR)
            if index == 0:
                out.append("|" + " --- |" * len(cells) + _BR)
        out.append(_BR)


def _nearest_table(node: LexborNode) -> int | None:
    parent = node.parent
    while parent is not None:
        if parent.tag == "table":
            return parent.mem_id
        parent = parent.parent
    return None


def to_markdown(nodes: list[LexborNode], resolver: Resolver) -> str:
    """Markdown of ``nodes`` (the main content, in document order)."""
    writer = _Writer(resolver)
    out: list[str] = []
    for node in nodes:
        if node.is_element_node:
            out.append(_PARA)
            writer.element(node, out)
            out.append(_PARA)
    text = _finish("".join(out)).replace(_BR, "\n").replace(_INDENT, "    ")
    if writer.code:
        code = writer.code
        text = _CODE_REF.sub(lambda m: code[int(m.group(1))], text)
    return text
