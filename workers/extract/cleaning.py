"""Readability's conditional cleaning of the chosen content (``_cleanConditionally``).

Tables, lists and divs inside the result are dropped when they look like boilerplate:
a negative class, mostly links (related-article lists, share bars), more list items
than paragraphs, image strips without text, forms. Data tables are kept. Like
Readability, nodes are visited bottom-up and removed at once, so a parent is judged on
what is left of it. The descendant counts come from one CSS query per node (not one per
tag: each query has a fixed cost that dominated).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

from selectolax.lexbor import LexborNode

from workers.extract.signals import BYLINE_SELECTOR, class_weight, has_ancestor, is_byline

__all__ = ["clean_conditionally", "drop_bylines", "is_data_table"]

_CLEANED: Final = "table, ul, div"
_COUNTED: Final = "p, img, li, input, object, embed, iframe, a, h1, h2, h3, h4, h5, h6, ul, ol"
_HEADINGS: Final = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_EMBEDS: Final = frozenset({"object", "embed", "iframe"})


def is_data_table(table: LexborNode) -> bool:
    """Readability's _markDataTables heuristic for one table."""
    attrs = table.attributes
    if attrs.get("role") == "presentation" or attrs.get("datatable") == "0":
        return False
    if attrs.get("summary") or table.css_first("caption, thead, th, col, colgroup, tfoot") is not None:
        return True
    if len(table.css("table")) > 1:  # css() includes the table itself
        return False
    rows = table.css("tr")
    if len(rows) >= 10:
        return True
    columns = max((len(r.css("td")) for r in rows[:10]), default=0)
    return columns > 4 or len(rows) * columns > 10


@dataclass(slots=True)
class _Stats:
    """What _cleanConditionally counts below a node."""

    text: str
    p: int = 0
    img: int = 0
    li: int = 0
    inputs: int = 0
    embeds: int = 0
    links: float = 0.0
    headings: int = 0
    lists: int = 0


def _count(node: LexborNode, *, hash_links: bool) -> _Stats:
    stats = _Stats(text=node.text())
    own = node.mem_id
    for el in node.css(_COUNTED):
        t = el.tag
        if t == "a":
            stats.links += len(el.text())
        elif t == "p":
            stats.p += 1
        elif t == "li":
            stats.li += 1
        elif t == "img":
            stats.img += 1
        elif t in _HEADINGS:
            stats.headings += len(el.text())
        elif t in ("ul", "ol"):
            if el.mem_id != own:
                stats.lists += len(el.text())
        elif t == "input":
            stats.inputs += 1
        elif t in _EMBEDS:
            stats.embeds += 1
    if stats.links and hash_links:
        stats.links -= 0.7 * sum(len(a.text()) for a in node.css('a[href^="#"]'))
    return stats


def _only_child(node: LexborNode) -> LexborNode | None:
    """The single element child of a node that has no text of its own, else None."""
    only = None
    child = node.child
    while child is not None:
        tag = child.tag or "-"
        if tag == "-text":
            if (child.text_content or "").strip():
                return None
        elif tag[0] != "-":
            if only is not None:
                return None
            only = child
        child = child.next
    return only


def _should_remove(node: LexborNode, stats: _Stats) -> bool:
    tag = node.tag
    weight = class_weight(node)
    if weight < 0:
        return True
    text = stats.text
    if text.count(",") >= 10:
        return False
    text_len = len(text)
    density = stats.links / text_len if text_len else 0.0
    is_list = tag == "ul" or (text_len > 0 and stats.lists / text_len > 0.9)
    length = len(text.strip())
    p, img = stats.p, stats.img
    remove = (
        (not is_list and stats.li - 100 > p)
        or stats.inputs > p // 3
        or (not is_list and weight < 25 and density > 0.2)
        or (weight >= 25 and density > 0.5)
        or (stats.embeds == 1 and length < 75)
        or stats.embeds > 1
    )
    if not remove and img > 1 and p / img < 0.5:
        remove = not has_ancestor(node, "figure")
    if (
        not remove
        and not is_list
        and length < 25
        and density > 0
        and (img == 0 or img > 2)
        and stats.headings / max(text_len, 1) < 0.9
    ):
        remove = not has_ancestor(node, "figure")
    if remove and is_list:
        # A list of images (a gallery) is content.
        items = node.css("li")
        if items and all(len(i.css("img")) == 1 and not i.text().strip() for i in items):
            return False
    return remove


def _protected(root: LexborNode) -> set[int]:
    """Nodes inside ``<code>`` or inside a data table (kept whatever they look like)."""
    out: set[int] = set()
    if root.css_first("code") is not None:  # the descendant selector climbs every node
        out.update(n.mem_id for n in root.css("code table, code ul, code div"))
    for table in root.css("table"):
        if is_data_table(table):
            out.add(table.mem_id)
            out.update(n.mem_id for n in table.css("table, ul, div"))
    return out


def clean_conditionally(roots: list[LexborNode]) -> tuple[list[LexborNode], int]:
    """Clean inside ``roots`` (which may go too); returns the surviving roots and the
    number of elements removed (0: cleaning changed nothing)."""
    root_ids = {r.mem_id for r in roots}
    gone: set[int] = set()
    removed = 0
    for root in roots:
        protected = _protected(root)
        hash_links = root.css_first('a[href^="#"]') is not None
        kept: dict[int, _Stats] = {}
        # Bottom-up: descendants come after their ancestor in document order, so in
        # reverse they are handled (and possibly freed) before it, never after.
        for node in reversed(root.css(_CLEANED)):
            key = node.mem_id
            if key in protected:
                continue
            # A wrapper around one kept element and no text of its own counts the same
            # as that element: reuse its numbers (nested wrappers would be quadratic).
            only = _only_child(node)
            stats = kept.get(only.mem_id) if only is not None else None
            if stats is None:
                stats = _count(node, hash_links=hash_links)
            if _should_remove(node, stats):
                if key in root_ids:
                    gone.add(key)
                node.decompose()
                removed += 1
            else:
                kept[key] = stats
    return ([r for r in roots if r.mem_id not in gone] if gone else roots), removed


_BYLINE_CHARS: Final = 100


def drop_bylines(roots: list[LexborNode]) -> list[LexborNode]:
    """Remove the byline inside ``roots`` (the author line is metadata, not main text), as
    Readability does: an element marked ``rel=author``/``itemprop=author`` or whose class/id
    says byline, author, dateline, with 1-99 characters of text; the first such element in
    document order, as Readability takes one byline. Returns the surviving roots."""
    root_ids = {r.mem_id for r in roots}
    for root in roots:
        for node in root.css(BYLINE_SELECTOR):
            if (
                node.mem_id not in root_ids
                and is_byline(node)
                and 0 < len(node.text(strip=True)) < _BYLINE_CHARS
            ):
                node.decompose()
                return roots
    return roots
