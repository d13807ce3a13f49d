"""Absolute, deduplicated http(s) links of a page.

``urllib.parse.urljoin`` costs ~8 µs a call (measured: 1.4 ms for the 168 links of an
average readability page), so the common shapes (absolute, scheme-relative, root-relative,
query-only) are resolved with string operations and only relative paths with dot segments
or bare names go through ``urljoin``. Fragments are dropped; ``javascript:``, ``mailto:``,
``tel:``, ``data:`` and other non-http(s) schemes are skipped.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urljoin, urlsplit

from selectolax.lexbor import LexborHTMLParser

__all__ = ["Resolver", "base_url", "outlinks"]

_WS: Final = " \t\n\r\x0c"


class Resolver:
    """Resolves hrefs against one base URL."""

    __slots__ = ("base", "origin", "scheme", "without_query")

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.base = base
        self.scheme = parts.scheme.lower()
        self.origin = f"{self.scheme}://{parts.netloc}"
        self.without_query = base.split("#", 1)[0].split("?", 1)[0]

    def resolve(self, href: str | None) -> str | None:
        """Absolute http(s) URL without fragment, or None for anything else."""
        if not href:
            return None
        href = href.strip(_WS)
        if not href or href[0] == "#":
            return None
        if "#" in href:
            href = href.split("#", 1)[0]
        head = href[:8].lower()
        if head.startswith(("http://", "https://")):
            out = href
        elif href.startswith("//"):
            out = f"{self.scheme}:{href}"
        elif href[0] == "/":
            out = self.origin + href
        elif href[0] == "?":
            out = self.without_query + href
        else:
            colon = href.find(":")
            if colon > 0 and "/" not in href[:colon] and "?" not in href[:colon]:
                return None  # another scheme: javascript:, mailto:, tel:, data:, ftp: ...
            try:
                out = urljoin(self.base, href)
            except ValueError:
                return None
        if not out[:8].lower().startswith(("http://", "https://")):
            return None
        if " " in out or "\n" in out:
            out = out.replace("\n", "").replace(" ", "%20")
        return out


def base_url(tree: LexborHTMLParser, page_url: str) -> str:
    """The page's base URL: ``<base href>`` resolved against the page URL, else the page URL."""
    node = tree.css_first("base[href]")
    if node is not None:
        href = (node.attrs.get("href") or "").strip(_WS)
        if href and not href.lower().startswith(("javascript:", "data:")):
            try:
                joined = urljoin(page_url, href)
            except ValueError:
                return page_url
            if joined.startswith(("http://", "https://")):
                return joined
    return page_url


def outlinks(tree: LexborHTMLParser, resolver: Resolver) -> list[str]:
    """Every ``<a href>`` and ``<area href>`` of the page, resolved, deduplicated, in order."""
    seen: dict[str, None] = {}
    resolve = resolver.resolve
    for node in tree.css("a[href], area[href]"):
        url = resolve(node.attrs.get("href"))
        if url is not None:
            seen[url] = None
    return list(seen)
