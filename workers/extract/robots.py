"""Robots directives that apply to us: ``<meta name="robots">``, ``<meta name="<our token>">``
and ``X-Robots-Tag`` response headers (Google's and Bing's documented syntax).

Directive names are lower-cased and deduplicated; ``none`` means ``noindex`` + ``nofollow``;
the positive defaults (``all``, ``index``, ``follow``) add nothing. An ``X-Robots-Tag`` value
may be scoped to one crawler (``googlebot: noindex``): a scoped group applies only when its
name is our product token (``streamcrawl: noindex``), and an unscoped value applies to every
crawler. Directives with a value (``max-snippet: 50``, ``unavailable_after: <date>``) are kept
as ``name:value``. Discovery reads ``nofollow``; the storage writer skips ``noindex`` pages.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from selectolax.lexbor import LexborHTMLParser

__all__ = ["directives", "header_values", "meta_values", "product_token"]

_POSITIVE: Final = frozenset({"all", "index", "follow"})
_VALUED: Final = frozenset({"max-snippet", "max-image-preview", "max-video-preview", "unavailable_after"})
_NAME: Final = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")


def product_token(user_agent: str) -> str:
    """The product token of a User-Agent (``StreamCrawl/0.1 (+url)`` -> ``streamcrawl``)."""
    return (user_agent.split("/", 1)[0].strip() or user_agent).lower()


def meta_values(tree: LexborHTMLParser, token: str) -> list[str]:
    """``content`` of every robots meta tag for all crawlers or for ``token``."""
    out = []
    for node in tree.css("meta[name][content]"):
        attrs = node.attrs
        name = (attrs.get("name") or "").strip().lower()
        if name in ("robots", token):
            out.append(attrs.get("content") or "")
    return out


def header_values(headers: Iterable[tuple[str, str]] | Iterable[list[str]]) -> list[str]:
    """Every ``X-Robots-Tag`` value among ``(name, value)`` response headers."""
    return [pair[1] for pair in headers if len(pair) == 2 and pair[0].lower() == "x-robots-tag"]


def _add(out: dict[str, None], item: str) -> None:
    name, _, value = item.partition(":")
    name = name.strip()
    if name in _VALUED:
        out[f"{name}:{value.strip()}"] = None
    elif name == "none":
        out["noindex"] = out["nofollow"] = None
    elif name not in _POSITIVE and _NAME.match(name):
        out[name] = None


def directives(*, meta: Iterable[str] = (), headers: Iterable[str] = (), token: str) -> list[str]:
    """The directives that apply to crawler ``token``, sorted.

    ``meta``: the contents of the page's robots meta tags (already filtered for us by
    :func:`meta_values`); ``headers``: the ``X-Robots-Tag`` values (:func:`header_values`)."""
    out: dict[str, None] = {}
    for content in meta:
        for item in content.lower().split(","):
            _add(out, item)
    for value in headers:
        scope: str | None = None  # None: every crawler
        for raw in value.lower().split(","):
            item = raw.strip()
            head, sep, rest = item.partition(":")
            head = head.strip()
            if sep and head not in _VALUED and " " not in head and head:
                scope, item = head, rest.strip()  # "googlebot: noindex" opens a scoped group
            if scope is None or scope == token:
                _add(out, item)
    return sorted(out)
