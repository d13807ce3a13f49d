"""Readability's per-element signals over selectolax nodes: class weight, link density,
"unlikely candidate", plus the small tree helpers the content extractor shares.

Word tests use Aho-Corasick automata on the lower-cased class/id string: Python's
alternation regexes with ``re.I`` (Readability's REGEXPS) measured ~60x slower on class
names. Verdicts are memoised by attribute values, which repeat a lot within a site.
"""

from __future__ import annotations

from typing import Final

import ahocorasick_rs
from selectolax.lexbor import LexborNode

__all__ = [
    "BYLINE_SELECTOR",
    "HIDDEN_SELECTOR",
    "class_weight",
    "has_ancestor",
    "is_byline",
    "link_density",
    "remove_all",
    "unlikely",
]


class _Words:
    """Does a lower-cased string contain any of these ``|``-separated words?"""

    __slots__ = ("_ac",)

    def __init__(self, words: str) -> None:
        self._ac = ahocorasick_rs.AhoCorasick(
            words.split("|"), matchkind=ahocorasick_rs.MATCHKIND_LEFTMOST_FIRST
        )

    def __call__(self, lowered: str) -> bool:
        return bool(self._ac.find_matches_as_indexes(lowered))


# Readability.js's REGEXPS, all case-insensitive substring tests.
_IS_UNLIKELY: Final = _Words(
    "-ad-|ai2html|banner|breadcrumbs|combx|comment|community|cover-wrap|disqus|extra|footer|gdpr|"
    "header|legends|menu|related|remark|replies|rss|shoutbox|sidebar|skyscraper|social|sponsor|"
    "supplemental|ad-break|agegate|pagination|pager|popup|yom-remote"
)
_IS_MAYBE: Final = _Words("and|article|body|column|content|main|mathjax|shadow")
_IS_POSITIVE: Final = _Words(
    "article|body|content|entry|hentry|h-entry|main|page|pagination|post|text|blog|story"
)
_IS_NEGATIVE: Final = _Words(
    "-ad-|hidden|banner|combx|comment|com-|contact|footer|gdpr|masthead|media|meta|outbrain|promo|"
    "related|scroll|share|shoutbox|sidebar|skyscraper|sponsor|shopping|tags|widget"
)
_BYLINE_WORDS: Final = "byline|author|dateline|writtenby|p-author"
_IS_BYLINE: Final = _Words(_BYLINE_WORDS)
_UNLIKELY_ROLES: Final = frozenset(
    {"menu", "menubar", "complementary", "navigation", "alert", "alertdialog", "dialog"}
)
_EXEMPT: Final = frozenset({"body", "a", "html", "article", "main"})
_MEMO_LIMIT: Final = 100_000

HIDDEN_SELECTOR: Final = (
    '[hidden], [aria-hidden="true"], [style*="display:none" i], [style*="display: none" i], '
    '[style*="visibility:hidden" i], [style*="visibility: hidden" i]'
)
"""Elements Readability treats as invisible."""
BYLINE_SELECTOR: Final = ", ".join(
    ['[rel="author" i]', '[itemprop*="author" i]']
    + [f'[{attr}*="{word}" i]' for attr in ("class", "id") for word in _BYLINE_WORDS.split("|")]
)
"""Every element :func:`is_byline` can accept, and a few more (lexbor tests this in C, so the
Python test runs on these candidates only, not on every element with a class or an id)."""

_weights: dict[tuple[str, str], int] = {}
_unlikely: dict[tuple[str, str, str], bool] = {}
_bylines: dict[str, bool] = {}


def _negative(lowered: str) -> bool:
    return _IS_NEGATIVE(lowered) or " hid " in f" {lowered} "


def class_weight(node: LexborNode) -> int:
    """-25 for a negative and +25 for a positive class, the same again for the id."""
    attrs = node.attributes
    key = (attrs.get("class") or "", attrs.get("id") or "")
    weight = _weights.get(key)
    if weight is None:
        weight = 0
        for value in key:
            if value:
                lowered = value.lower()
                weight += (25 if _IS_POSITIVE(lowered) else 0) - (25 if _negative(lowered) else 0)
        if len(_weights) > _MEMO_LIMIT:
            _weights.clear()
        _weights[key] = weight
    return weight


def link_density(
    node: LexborNode, text_len: int, *, hash_links: bool = True, lengths: dict[int, int] | None = None
) -> float:
    """Share of the node's text inside links; in-page ``#`` links count 30%.

    ``hash_links=False`` promises there are no ``href="#..."`` links (saves a query).
    ``lengths`` (link ``mem_id`` -> text length) is a memo shared by calls on nested nodes of
    a tree that does not change meanwhile: each link's text is then read once, not once
    per enclosing candidate."""
    if not text_len:
        return 0.0
    if lengths is None:
        links: float = sum(len(a.text()) for a in node.css("a"))
        if links and hash_links:
            links -= 0.7 * sum(len(a.text()) for a in node.css('a[href^="#"]'))
        return links / text_len
    links = 0
    for a in node.css("a"):
        key = a.mem_id
        size = lengths.get(key)
        if size is None:
            size = lengths[key] = len(a.text())
        links += size
    if links and hash_links:
        links -= 0.7 * sum(lengths[a.mem_id] for a in node.css('a[href^="#"]'))
    return links / text_len


def has_ancestor(node: LexborNode, tag: str, depth: int = 3) -> bool:
    """Readability's _hasAncestorTag (three levels up by default)."""
    parent = node.parent
    while parent is not None and depth > 0:
        if parent.tag == tag:
            return True
        parent = parent.parent
        depth -= 1
    return False


def unlikely(node: LexborNode) -> bool:
    """Readability's unlikely-candidate test of one element (its ancestors not included)."""
    if node.tag in _EXEMPT:
        return False
    attrs = node.attributes
    key = (attrs.get("class") or "", attrs.get("id") or "", attrs.get("role") or "")
    verdict = _unlikely.get(key)
    if verdict is None:
        match = f"{key[0]} {key[1]}".lower()
        verdict = key[2] in _UNLIKELY_ROLES or (_IS_UNLIKELY(match) and not _IS_MAYBE(match))
        if len(_unlikely) > _MEMO_LIMIT:
            _unlikely.clear()
        _unlikely[key] = verdict
    return verdict and not (has_ancestor(node, "table") or has_ancestor(node, "code"))


def is_byline(node: LexborNode) -> bool:
    """Readability's byline test of an element's attributes (its text length not included):
    ``rel="author"``, ``itemprop`` containing author, or a class/id matching its BYLINE regex."""
    attrs = node.attributes
    if attrs.get("rel") == "author" or "author" in (attrs.get("itemprop") or ""):
        return True
    key = f"{attrs.get('class') or ''} {attrs.get('id') or ''}"
    verdict = _bylines.get(key)
    if verdict is None:
        verdict = _IS_BYLINE(key.lower())
        if len(_bylines) > _MEMO_LIMIT:
            _bylines.clear()
        _bylines[key] = verdict
    return verdict


def remove_all(nodes: list[LexborNode]) -> None:
    """Decompose ``nodes``. One inside another is skipped: decomposing the outer one frees
    it, and touching a freed node would crash; so all checks happen before any removal."""
    ids = {n.mem_id for n in nodes}
    keep = []
    for n in nodes:
        parent = n.parent
        while parent is not None and parent.mem_id not in ids:
            parent = parent.parent
        if parent is None:
            keep.append(n)
    for n in keep:
        n.decompose()
