"""Readability's conditional cleaning of the chosen content (``_cleanConditionally``).

Tables, lists and divs inside the result are dropped when they look like boilerplate:
a negative class, mostly links (related-article lists, share bars), more list items
than paragraphs, image strips without text, forms. Data tables are kept. Like
Readability, nodes are visited bottom-up and removed at once, so a parent is judged on
what is left of it. The descendant counts come from one CSS query per node (not one per
tag: each query has a fixed cost that dominated).
"""

from __future__ import annotations

from typing import Final

from selectolax.lexbor import LexborNode

from workers.extract.signals import class_weight, has_ancestor

__all__ = ["clean_conditionally", "is_data_table"]

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


def _in_data_table(node: LexborNode) -> bool:
    parent = node.parent
    while parent is not None:
        if parent.tag == "table":
            return is_data_table(parent)
        parent = parent.parent
    return False


def _should_remove(node: LexborNode, *, code: bool, tables: bool, hash_links: bool) -> bool:
    tag = node.tag
    if tables and ((tag == "table" and is_data_table(node)) or _in_data_table(node)):
        return False
    if code and has_ancestor(node, "code", depth=1000):
        return False
    weight = class_weight(node)
    if weight < 0:
        return True
    text = node.text()
    if text.count(",") >= 10:
        return False
    text_len = len(text)
    p = img = li = inputs = embeds = 0
    links = headings = lists = 0
    for el in node.css(_COUNTED):
        t = el.tag
        if t == "a":
            links += len(el.text())
        elif t == "p":
            p += 1
        elif t == "li":
            li += 1
        elif t == "img":
            img += 1
        elif t in _HEADINGS:
            headings += len(el.text())
        elif t in ("ul", "ol"):
            if el.mem_id != node.mem_id:
                lists += len(el.text())
        elif t == "input":
            inputs += 1
        elif t in _EMBEDS:
            embeds += 1
    if links and hash_links:
        links -= int(0.7 * sum(len(a.text()) for a in node.css('a[href^="#"]')))
    density = links / text_len if text_len else 0.0
    is_list = tag == "ul" or (text_len > 0 and lists / text_len > 0.9)
    length = len(text.strip())
    li -= 100
    remove = (
        (not is_list and li > p)
        or inputs > p // 3
        or (not is_list and weight < 25 and density > 0.2)
        or (weight >= 25 and density > 0.5)
        or (embeds == 1 and length < 75)
        or embeds > 1
    )
    if not remove and img and img > 1 and p / img < 0.5:
        remove = not has_ancestor(node, "figure")
    if (
        not remove
        and not is_list
        and length < 25
        and density > 0
        and (img == 0 or img > 2)
        and headings / max(text_len, 1) < 0.9
    ):
        remove = not has_ancestor(node, "figure")
    if remove and is_list:
        # A list of images (a gallery) is content.
        items = node.css("li")
        if items and all(len(i.css("img")) == 1 and not i.text().strip() for i in items):
            return False
    return remove


def clean_conditionally(roots: list[LexborNode]) -> list[LexborNode]:
    """Clean inside ``roots`` (which may go too); returns the surviving roots."""
    root_ids = {r.mem_id for r in roots}
    gone: set[int] = set()
    for root in roots:
        code = root.css_first("code") is not None
        tables = root.css_first("table") is not None
        hash_links = root.css_first('a[href^="#"]') is not None
        # Bottom-up: descendants come after their ancestor in document order, so in
        # reverse they are handled (and possibly freed) before it, never after.
        for node in reversed(root.css(_CLEANED)):
            if _should_remove(node, code=code, tables=tables, hash_links=hash_links):
                if node.mem_id in root_ids:
                    gone.add(node.mem_id)
                node.decompose()
    return [r for r in roots if r.mem_id not in gone] if gone else roots
