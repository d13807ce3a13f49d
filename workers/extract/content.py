"""Main-content extraction: a Readability-style scorer over a selectolax (lexbor) tree.

The algorithm follows Mozilla Readability's ``grabArticle``: drop hidden nodes, score
paragraph-like elements (commas, length) into up to five ancestors, scale candidates by
link density, pick the best, climb to a better ancestor when several strong candidates
share it, append qualifying siblings, then clean the result conditionally (link-heavy
blocks, forms, image strips) and drop its byline (metadata: Readability keeps it apart).
Readability deletes "unlikely" elements (class/id such as comment, sidebar, footer) before
scoring; here paragraphs under such an element are not
scored (each ancestor tested once, memoised) and the elements are removed from the
result only: the same outcome without testing every node of the page. Element selection
uses CSS queries that lexbor runs in C, so the Python work follows the number of
paragraphs and candidates rather than the number of nodes (bench/stage_fast_extractor.py).

Destructive: the tree is modified, so metadata and links are read first. A result under
500 characters is retried on a fresh parse with fewer filters, as Readability does; a retry
whose filter changed nothing in the attempt before it (no paragraph was skipped as
unlikely and no unlikely element removed; no class weighed in a score; conditional
cleaning removed nothing) would repeat that attempt exactly, so it is not run (no parse,
no scoring: it could not win, only a longer result does).

**Fallbacks** (no silent bad extractions). When every Readability attempt yields next to
nothing, or its pick is implausibly small beside the page's own ``<article>``/``<main>``
(under 500 characters and a tenth of a 2,000+ character article), the longest such element is taken whole
(``method="article"``); failing that, the whole body without navigation, asides and
footers (``method="body"``; the Markdown writer then drops its link blocks, a link-density
pass). Pages with more tags than the node cap skip scoring and go straight to ``body``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from selectolax.lexbor import LexborHTMLParser, LexborNode

from workers.extract.cleaning import clean_conditionally, drop_bylines
from workers.extract.signals import HIDDEN_SELECTOR, class_weight, link_density, remove_all, unlikely

__all__ = ["INVISIBLE_TAGS", "MainContent", "describe", "implausible", "longest_article", "main_content"]

INVISIBLE_TAGS: Final = ["script", "style", "noscript", "template"]
"""Elements a reader never sees (extract() removes them before measuring the visible text)."""
_DROP_TAGS: Final = [
    *INVISIBLE_TAGS, "iframe", "svg", "object", "embed", "link",
    "meta", "input", "textarea", "select", "button", "nav", "aside", "footer",
]  # fmt: skip
_DROP_VISIBLE: Final = _DROP_TAGS[len(INVISIBLE_TAGS) :]
"""_DROP_TAGS for a tree without INVISIBLE_TAGS (each tag is one walk over the whole tree)."""
_FORM_TEXT: Final = 1000
"""A ``<form>`` with at least this much text, or half the page's, is a page wrapped in one
(ASP.NET WebForms and many CMSs put the whole page in a form): its controls go, its
content stays. Smaller forms (search, login, comment, newsletter) are dropped whole."""
# Readability's DIV_TO_P_ELEMS. Order matters: lexbor tries the selectors of :has() one
# by one over all descendants, so the common "div" first keeps nested wrappers linear
# (measured 1.8 s -> 1 ms on 8,000 nested divs).
_BLOCKS: Final = "div, p, img, table, ul, ol, pre, blockquote, dl"
_SCORE_SELECTOR: Final = f"p, td, pre, section, h2, h3, h4, h5, h6, div:not(:has({_BLOCKS}))"
_TAG_BASE: Final = {
    "div": 5, "pre": 3, "td": 3, "blockquote": 3,
    "address": -3, "ol": -3, "ul": -3, "dl": -3, "dd": -3, "dt": -3, "li": -3, "form": -3,
    "h1": -5, "h2": -5, "h3": -5, "h4": -5, "h5": -5, "h6": -5, "th": -5,
}  # fmt: skip
_SENTENCE_END: Final = re.compile(r"\.( |$)")
_TOP_CANDIDATES: Final = 5
_MIN_TEXT: Final = 500


_NOTHING: Final = 25
"""Characters under which an attempt "yields nothing" and the fallbacks are tried."""
ARTICLE_MIN: Final = 2000
ARTICLE_SHARE: Final = 0.1
_ARTICLE_SELECTOR: Final = "article, main, [role=main]"
_METHODS: Final = (
    "readability",
    "readability-keep-unlikely",
    "readability-no-classes",
    "readability-no-cleaning",
)


@dataclass(slots=True)
class MainContent:
    """The nodes holding a page's main content, in document order."""

    nodes: list[LexborNode]
    text: str = ""
    """Plain text of the nodes (paragraph-separated)."""
    method: str = "readability"
    """How the nodes were chosen: a Readability attempt (``readability``, or with fewer
    filters ``readability-keep-unlikely``/``-no-classes``/``-no-cleaning``), ``article``
    or ``body`` (the fallbacks), ``none`` (no body)."""
    block: str = ""
    """The chosen element, as ``tag#id.class``."""
    unlikely_block: bool = False
    """The chosen element's class/id/role says navigation, footer, sidebar, comments …"""
    article_chars: int | None = None
    """Characters of the page's longest <article>/<main>; measured only for short results."""

    @classmethod
    def of(cls, nodes: list[LexborNode], *, method: str, top: LexborNode | None = None) -> MainContent:
        chosen = top if top is not None else (nodes[0] if nodes else None)
        return cls(
            nodes=nodes,
            text="\n\n".join(n.text(separator=" ") for n in nodes),
            method=method,
            block=describe(chosen) if chosen is not None else "",
            unlikely_block=chosen is not None and (unlikely(chosen) or class_weight(chosen) < 0),
        )


def describe(node: LexborNode) -> str:
    """``tag#id.first-class`` of an element (at most 80 characters)."""
    attrs = node.attributes
    out = node.tag or ""
    if attrs.get("id"):
        out += f"#{attrs['id']}"
    classes = (attrs.get("class") or "").split()
    if classes:
        out += f".{classes[0]}"
    return out[:80]


def implausible(text_chars: int, article_chars: int) -> bool:
    """Is a main text of ``text_chars`` implausibly short beside an article of ``article_chars``?
    (Short: under 500 characters and under a tenth of a 2,000+ character article.)"""
    return article_chars >= ARTICLE_MIN and text_chars < min(_MIN_TEXT, ARTICLE_SHARE * article_chars)


def longest_article(tree: LexborHTMLParser) -> int:
    """Characters of the longest ``<article>``/``<main>``/``[role=main]`` (0 when none)."""
    return max((len(n.text(strip=True)) for n in tree.css(_ARTICLE_SELECTOR)), default=0)


def _ancestors(node: LexborNode, limit: int) -> list[LexborNode]:
    out: list[LexborNode] = []
    parent = node.parent
    while parent is not None and len(out) < limit:
        if parent.tag in ("html", "-document") or parent.parent is None:
            break
        out.append(parent)
        parent = parent.parent
    return out


class _Blocked:
    """Is an element inside an unlikely candidate? Memoised per node, so a page's
    ancestors are each tested once, instead of a 60-selector query over every element.
    The elements' own verdicts are kept too (``unlikely``): stripping unlikely elements
    from the result, on the same unchanged tree, asks again about most of them."""

    __slots__ = ("own", "status")

    def __init__(self) -> None:
        self.status: dict[int, bool] = {}
        self.own: dict[int, bool] = {}

    def unlikely(self, node: LexborNode) -> bool:
        """``signals.unlikely(node)``, from the memo when known."""
        known = self.own.get(node.mem_id)
        return unlikely(node) if known is None else known

    def __call__(self, node: LexborNode) -> bool:
        chain = []
        result = False
        current: LexborNode | None = node
        while current is not None:
            known = self.status.get(current.mem_id)
            if known is not None:
                result = known
                break
            if current.tag in ("body", "html"):
                break
            chain.append(current)
            current = current.parent
        for n in reversed(chain):
            key = n.mem_id
            if not result:
                result = self.own[key] = unlikely(n)
            self.status[key] = result
        return result


def _strip_unlikely(nodes: list[LexborNode], used: set[str], blocked: _Blocked) -> list[LexborNode]:
    """Remove unlikely elements inside the chosen content; returns the surviving roots.
    ``blocked``: the scoring's memo, on this same tree, not changed since."""
    test = blocked.unlikely
    doomed = [n for root in nodes for n in root.css("[class], [id], [role]") if test(n)]
    if not doomed:
        return nodes
    used.add("strip_unlikely")
    gone = {n.mem_id for n in doomed}
    survivors = [n for n in nodes if n.mem_id not in gone]
    remove_all(doomed)
    return survivors


def _grab(
    root: LexborNode, *, blocked: _Blocked | None, weight_classes: bool, used: set[str]
) -> tuple[LexborNode, float, dict[int, float]] | None:
    """Score the paragraphs under ``root`` (those inside unlikely elements skipped when
    ``blocked`` is given); (top candidate, its score, every score), or None. Adds to
    ``used`` the filters that changed a score: ``strip_unlikely`` (a paragraph was
    skipped), ``weight_classes`` (a class/id weight was not 0)."""
    scores: dict[int, float] = {}
    nodes: dict[int, LexborNode] = {}
    for el in root.css(_SCORE_SELECTOR):
        text = el.text()
        length = len(text.strip())
        if length < 25:
            continue
        if blocked is not None and blocked(el):
            used.add("strip_unlikely")
            continue
        content = 1 + text.count(",") + text.count("，") + min(length // 100, 3)
        # Up to five ancestors get the score: all of it, half, then a third per level.
        anc = el.parent
        level = 0
        while anc is not None and level < 5:
            tag = anc.tag
            if tag == "html" or tag == "-document":
                break
            key = anc.mem_id
            if key not in scores:
                weight = class_weight(anc) if weight_classes else 0
                if weight:
                    used.add("weight_classes")
                scores[key] = _TAG_BASE.get(tag or "", 0) + weight
                nodes[key] = anc
            scores[key] += content / (1 if level == 0 else 2 if level == 1 else level * 3)
            anc = anc.parent
            level += 1
    if not scores:
        return None
    hash_links = root.css_first('a[href^="#"]') is not None
    # Scale candidates by (1 - link density), best raw score first. Scaling only lowers a
    # score, so once a raw score is below the fifth best scaled one, no later candidate can
    # reach the top five and the (costly) link densities of the rest are not computed.
    final = dict(scores)
    best: list[float] = []
    link_lengths: dict[int, int] = {}  # candidates nest: their links are mostly the same ones
    for key in sorted(scores, key=scores.__getitem__, reverse=True):
        raw = scores[key]
        if len(best) >= _TOP_CANDIDATES and raw <= best[-1]:
            break
        node = nodes[key]
        density = link_density(node, len(node.text()), hash_links=hash_links, lengths=link_lengths)
        final[key] = scaled = raw * (1 - density)
        best.append(scaled)
        best.sort(reverse=True)
        del best[_TOP_CANDIDATES:]
    top_keys = sorted(final, key=final.__getitem__, reverse=True)[:_TOP_CANDIDATES]
    top = nodes[top_keys[0]]
    top_score = final[top_keys[0]]
    # Several strong candidates sharing an ancestor: the ancestor is the article.
    alternatives = [
        {a.mem_id for a in _ancestors(nodes[k], 50)}
        for k in top_keys[1:]
        if top_score and final[k] / top_score >= 0.75
    ]
    if len(alternatives) >= 3:
        parent = top.parent
        while parent is not None and parent.tag not in ("body", "html"):
            if sum(parent.mem_id in a for a in alternatives) >= 3:
                top = parent
                break
            parent = parent.parent
    # Climb while the parent scores better.
    last = final.get(top.mem_id, top_score)
    threshold = last / 3
    parent = top.parent
    while parent is not None and parent.tag not in ("body", "html"):
        pscore = final.get(parent.mem_id)
        if pscore is None:
            parent = parent.parent
            continue
        if pscore < threshold:
            break
        if pscore > last:
            top = parent
            break
        last = pscore
        parent = parent.parent
    # An only child says nothing: take its parent.
    parent = top.parent
    while parent is not None and parent.tag not in ("body", "html") and _element_children(parent) == 1:
        top = parent
        parent = top.parent
    return top, final.get(top.mem_id, top_score), final


def _element_children(node: LexborNode) -> int:
    count = 0
    child = node.child
    while child is not None:
        if child.is_element_node:
            count += 1
        child = child.next
    return count


def _with_siblings(top: LexborNode, top_score: float, final: dict[int, float]) -> list[LexborNode]:
    parent = top.parent
    if parent is None or parent.tag in ("html",):
        return [top]
    threshold = max(10.0, top_score * 0.2)
    top_class = top.attributes.get("class") or ""
    out = []
    child = parent.child
    while child is not None:
        if child.is_element_node:
            if child.mem_id == top.mem_id:
                out.append(child)
            else:
                bonus = top_score * 0.2 if top_class and child.attributes.get("class") == top_class else 0
                score = final.get(child.mem_id)
                if score is not None and score + bonus >= threshold:
                    out.append(child)
                elif child.tag == "p":
                    text = child.text()
                    length = len(text)
                    density = link_density(child, length)
                    if (length > 80 and density < 0.25) or (
                        0 < length < 80 and density == 0 and _SENTENCE_END.search(text)
                    ):
                        out.append(child)
        child = child.next
    return out


def _drop_small_forms(tree: LexborHTMLParser, page_chars: int) -> None:
    forms = tree.css("form")
    if forms:
        sized = [(len(f.text(deep=True, strip=True)), f) for f in forms]
        remove_all([f for size, f in sized if size < _FORM_TEXT and size * 2 < page_chars])


def _prepare(
    tree: LexborHTMLParser, page_chars: int, *, invisible_removed: bool = False
) -> LexborNode | None:
    """Drop what is never main content; the body, or None. ``page_chars``: the page's visible
    text; ``invisible_removed``: INVISIBLE_TAGS are already gone from ``tree``."""
    tree.strip_tags(_DROP_VISIBLE if invisible_removed else _DROP_TAGS)
    _drop_small_forms(tree, page_chars)
    body = tree.body
    if body is not None:
        remove_all(body.css(HIDDEN_SELECTOR))
    return body


def _attempt(
    tree: LexborHTMLParser,
    *,
    page_chars: int,
    method: str,
    strip_unlikely: bool,
    weight_classes: bool,
    clean: bool,
    used: set[str],
    invisible_removed: bool = False,
) -> MainContent:
    """One Readability attempt; adds to ``used`` each filter (flag name) that changed something."""
    body = _prepare(tree, page_chars, invisible_removed=invisible_removed)
    if body is None:
        return MainContent(nodes=[], method="none")
    blocked = _Blocked() if strip_unlikely else None
    grabbed = _grab(body, blocked=blocked, weight_classes=weight_classes, used=used)
    if grabbed is None:
        return MainContent.of([body], method=method)
    top, score, final = grabbed
    nodes = _with_siblings(top, score, final)
    if blocked is not None:
        nodes = _strip_unlikely(nodes, used, blocked)
    if clean:
        nodes, removed = clean_conditionally(nodes)
        if removed:
            used.add("clean")
    nodes = drop_bylines(nodes)
    return MainContent.of(nodes, method=method, top=top)


def _fallback(tree: LexborHTMLParser, page_chars: int) -> MainContent:
    """The longest <article>/<main> whole, else the body without navigation and footers."""
    body = _prepare(tree, page_chars)
    if body is None:
        return MainContent(nodes=[], method="none")
    articles = [(len(n.text(strip=True)), n) for n in body.css(_ARTICLE_SELECTOR)]
    if articles:
        length, article = max(articles, key=lambda pair: pair[0])
        if length >= _NOTHING:
            return MainContent.of([article], method="article")
    return MainContent.of([body], method="body")


def main_content(
    tree: LexborHTMLParser,
    *,
    reparse: Callable[[], LexborHTMLParser],
    page_chars: int = 0,
    score: bool = True,
    invisible_removed: bool = False,
) -> MainContent:
    """Pick the main-content nodes of ``tree`` (destructive: read metadata and links first).

    Like Readability, a result under 500 characters is retried on a fresh tree from
    ``reparse()`` with fewer filters (keep unlikely nodes, then ignore class names, then
    skip conditional cleaning), and the longest result wins. When the result is under 500
    characters, :func:`longest_article` is measured on a fresh tree (``article_chars``);
    when the result yields nothing or is implausibly small beside it, the fallbacks run
    (see the module doc). ``page_chars`` is the page's visible text (for the form rule);
    ``score=False`` skips the Readability attempts (pages over the node cap).
    ``invisible_removed``: the caller already removed INVISIBLE_TAGS from ``tree``.
    """
    if not score:
        return _fallback(tree, page_chars)
    flags = {"strip_unlikely": True, "weight_classes": True, "clean": True}
    best: tuple[int, MainContent] | None = None
    used: set[str] = set()
    for retry in range(4):
        if retry:
            flag = ("strip_unlikely", "weight_classes", "clean")[retry - 1]
            flags[flag] = False
            if flag not in used:
                # Off, this filter would change nothing: the attempt would repeat the last one
                # step for step (same nodes, same length) and cannot win. What the last one
                # used stays what this one would have used.
                continue
            tree = reparse()
            used = set()
        result = _attempt(
            tree,
            page_chars=page_chars,
            method=_METHODS[retry],
            used=used,
            invisible_removed=invisible_removed and not retry,
            **flags,
        )
        length = len(result.text.strip())
        if length >= _MIN_TEXT:
            best = (length, result)
            break
        if best is None or length > best[0]:
            best = (length, result)
    assert best is not None
    length, result = best
    if length < _MIN_TEXT:
        fresh = reparse()
        fresh.strip_tags(INVISIBLE_TAGS)
        result.article_chars = longest_article(fresh)
        if length < _NOTHING or implausible(length, result.article_chars):
            fallback = _fallback(fresh, page_chars)
            fallback.article_chars = result.article_chars
            if len(fallback.text.strip()) > length:
                return fallback
    return result
