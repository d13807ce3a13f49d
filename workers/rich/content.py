"""The rendered DOM as Markdown, plain text, metadata and outlinks.

The whole ``<body>`` becomes Markdown and plain text (an app's text is rarely in an
"article"), written by the fast path's own writer so both paths follow one set of
conventions; link blocks are kept (an app's menus can be what it shows).
Text a reader sees that is not a text node is made one first: the placeholder of an
empty text field ("What needs to be done?") and the label of an ``<input>`` button.
"""

from __future__ import annotations

from dataclasses import dataclass

from selectolax.lexbor import LexborHTMLParser

from workers.extract.links import Resolver, base_url, outlinks
from workers.extract.markdown import render

__all__ = ["PageContent", "page_content"]

_DROP = "script, style, noscript, template, svg, canvas, iframe, object, embed"
_BUTTON_TYPES = frozenset({"submit", "button", "reset"})
_HIDDEN_INPUTS = frozenset({"hidden", "checkbox", "radio", "file", "image", "range", "color"})


@dataclass(frozen=True, slots=True)
class PageContent:
    markdown: str
    title: str | None
    description: str | None
    lang: str | None
    links: list[str]
    text: str = ""
    """The body as plain text (what a WET record holds)."""
    nofollow: tuple[str, ...] = ()
    """The subset of ``links`` marked rel=nofollow/ugc/sponsored."""


def _clean(value: str | None) -> str | None:
    if value is None:
        return None
    text = " ".join(value.split())
    return text or None


def _meta(tree: LexborHTMLParser, *selectors: str) -> str | None:
    for selector in selectors:
        node = tree.css_first(selector)
        if node is not None:
            value = _clean(node.attributes.get("content"))
            if value:
                return value
    return None


def _visible_control_text(tree: LexborHTMLParser) -> None:
    for node in tree.css("input, textarea"):
        attrs = node.attributes
        kind = (attrs.get("type") or "text").lower()
        if node.tag == "input" and kind in _HIDDEN_INPUTS:
            continue
        if node.tag == "input" and kind in _BUTTON_TYPES:
            text = _clean(attrs.get("value"))
        elif node.tag == "textarea":
            text = _clean(node.text()) or _clean(attrs.get("placeholder"))
        else:
            text = _clean(attrs.get("value")) or _clean(attrs.get("placeholder"))
        if text:
            node.replace_with(f" {text} ")


def page_content(html: str, *, url: str) -> PageContent:
    """Markdown and text of the rendered body, title, description, lang and outlinks (absolute, deduplicated)."""
    tree = LexborHTMLParser(html)
    title_node = tree.css_first("title")
    title = _clean(title_node.text()) if title_node is not None else None
    title = title or _meta(tree, 'meta[property="og:title"]')
    description = _meta(tree, 'meta[name="description"]', 'meta[property="og:description"]')
    html_node = tree.css_first("html")
    lang = _clean(html_node.attributes.get("lang")) if html_node is not None else None
    resolver = Resolver(base_url(tree, url))
    links = outlinks(tree, resolver)
    markdown = text = ""
    body = tree.body
    if body is not None:
        for node in body.css(_DROP):
            node.decompose()
        _visible_control_text(tree)
        written = render([body], resolver, drop_link_blocks=False)
        markdown, text = written.markdown, written.text
    return PageContent(
        markdown=markdown,
        title=title,
        description=description,
        lang=lang,
        links=links.urls,
        text=text,
        nofollow=tuple(links.nofollow),
    )
