"""Page metadata from ``<head>``: title, description, language, canonical URL, published time.

Read from the parsed tree before main-content extraction mutates it. Sources, first hit
wins:

- title: ``og:title``; the headline/name of a JSON-LD article; ``dc:title``/``twitter:title``;
  ``<title>`` cleaned of its site-name part the way Readability does (see :func:`clean_title`);
- description: ``og:description``, ``<meta name=description>``, ``twitter:description``,
  JSON-LD ``description``;
- language: ``<html lang>``, ``og:locale``, ``<meta http-equiv=content-language>``, the
  transport's Content-Language;
- canonical URL: ``<link rel=canonical>`` (absolute, fragment dropped), else ``og:url``;
- published time: ``article:published_time``, JSON-LD ``datePublished``, other common date
  metas, the first ``<time datetime>``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

from selectolax.lexbor import LexborHTMLParser

from workers.extract.links import Resolver

__all__ = ["PageMetadata", "clean_title", "read_metadata"]

_ARTICLE_TYPES: Final = re.compile(
    r"^(?:Article|AdvertiserContentArticle|NewsArticle|AnalysisNewsArticle|AskPublicNewsArticle|"
    r"BackgroundNewsArticle|OpinionNewsArticle|ReportageNewsArticle|ReviewNewsArticle|Report|"
    r"SatiricalArticle|ScholarlyArticle|MedicalScholarlyArticle|SocialMediaPosting|BlogPosting|"
    r"LiveBlogPosting|DiscussionForumPosting|TechArticle|APIReference|WebPage)$"
)
_DATE_KEYS: Final = (
    "article:published_time",
    "og:article:published_time",
    "datepublished",
    "date",
    "pubdate",
    "publishdate",
    "publish-date",
    "dc.date.issued",
    "dc.date",
    "dcterms.created",
    "sailthru.date",
    "parsely-pub-date",
)
_SEPARATORS: Final = re.compile(r" [|\-–—\\/>»] ")
_HIERARCHICAL: Final = re.compile(r" [\\/>»] ")
_SPACES: Final = re.compile(r"\s+")
_LANG: Final = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{2,8})*$")


@dataclass(slots=True)
class PageMetadata:
    title: str | None = None
    description: str | None = None
    lang: str | None = None
    canonical_url: str | None = None
    published_time: str | None = None


def _clean(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = _SPACES.sub(" ", value).strip()
    return text or None


def _words(text: str) -> int:
    return len(text.split())


def clean_title(title: str, headings: list[str]) -> str:
    """Readability's ``_getArticleTitle``: drop a site name after `` | ``, `` - ``, `` » ``...

    ``headings`` are the page's ``<h1>``/``<h2>`` texts, used to keep a ``Site: Title``
    title when a heading repeats it, and to replace a too short or too long title by the
    page's only ``<h1>``.
    """
    original = _SPACES.sub(" ", title).strip()
    current = original
    hierarchical = False
    separators = list(_SEPARATORS.finditer(original))
    if separators:
        hierarchical = bool(_HIERARCHICAL.search(original))
        current = original[: separators[-1].start()]
        if _words(current) < 3:
            current = re.sub(r"^[^|\-–—\\/>»]*[|\-–—\\/>»]", "", original)
    elif ": " in current:
        if not any(h.strip() == current for h in headings):
            current = original[original.rfind(":") + 1 :]
            if _words(current) < 3:
                current = original[original.find(":") + 1 :]
            elif _words(original[: original.find(":")]) > 5:
                current = original
    elif (len(current) > 150 or len(current) < 15) and len(headings) == 1:
        current = headings[0]
    current = _SPACES.sub(" ", current).strip()
    count = _words(current)
    if count <= 4 and (not hierarchical or count != _words(re.sub(r"[|\-–—\\/>»]+", "", original)) - 1):
        current = original
    return current


def _json_ld(tree: LexborHTMLParser) -> dict[str, Any]:
    """The first article-like JSON-LD object (or the first object at all)."""
    first: dict[str, Any] | None = None
    for node in tree.css('script[type="application/ld+json"]'):
        try:
            data = json.loads(node.text(deep=True))
        except (ValueError, RecursionError):
            continue
        stack = data if isinstance(data, list) else [data]
        while stack:
            item = stack.pop(0)
            if not isinstance(item, dict):
                continue
            graph = item.get("@graph")
            if isinstance(graph, list):
                stack.extend(graph)
            kind = item.get("@type")
            kinds = kind if isinstance(kind, list) else [kind]
            if any(isinstance(k, str) and _ARTICLE_TYPES.match(k) for k in kinds):
                if kinds != ["WebPage"]:
                    return item
                first = first or item
            elif first is None and ("headline" in item or "datePublished" in item):
                first = item
    return first or {}


def _lang(value: str | None) -> str | None:
    text = (value or "")[:64].strip().split(",")[0].strip()
    if not text or len(text) > 35 or not _LANG.match(text):
        return None
    return text.replace("_", "-")


TITLE_ORDER: tuple[str, ...] = ("og", "jsonld", "dc", "other")


def _headings(tree: LexborHTMLParser) -> list[str]:
    return [_SPACES.sub(" ", h.text(deep=True)).strip() for h in tree.css("h1, h2")]


def _similarity(a: str, b: str) -> float:
    """Readability's _textSimilarity: 1 - (share of b's tokens absent from a)."""
    tokens_a = set(re.findall(r"\w+", a.lower()))
    tokens_b = [t for t in re.findall(r"\w+", b.lower()) if t]
    if not tokens_a or not tokens_b:
        return 0.0
    unique_b = [t for t in tokens_b if t not in tokens_a]
    return 1 - len(" ".join(unique_b)) / max(len(" ".join(tokens_b)), 1)


def read_metadata(
    tree: LexborHTMLParser, resolver: Resolver, *, content_language: str | None = None
) -> PageMetadata:
    metas: dict[str, str] = {}
    for node in tree.css("meta[content]"):
        attrs = node.attributes
        content = attrs.get("content")
        if content is None:
            continue
        for key in ("property", "name", "itemprop", "http-equiv"):
            names = attrs.get(key)
            if names:
                for name in names.lower().replace(".", ":").split():
                    metas[name] = content  # the last occurrence wins, as in Readability
    ld = _json_ld(tree)
    out = PageMetadata()

    title_node = tree.css_first("title")
    page_title = _clean(title_node.text()) if title_node is not None else None
    headings: list[str] | None = None
    ld_title = _clean(ld.get("name")) or _clean(ld.get("headline"))
    if _clean(ld.get("name")) and _clean(ld.get("headline")) and ld.get("name") != ld.get("headline"):
        # Readability: some sites put their own name in "name"; take the headline when it,
        # and not the name, resembles the document title.
        headings = _headings(tree)
        doc_title = clean_title(page_title or "", headings)
        if _similarity(ld["headline"], doc_title) > 0.75 and _similarity(ld["name"], doc_title) <= 0.75:
            ld_title = _clean(ld["headline"])
    candidates = {
        "og": _clean(metas.get("og:title")),
        "jsonld": ld_title,
        "dc": _clean(metas.get("dc:title")) or _clean(metas.get("dcterm:title")),
        "other": _clean(metas.get("parsely-title"))
        or _clean(metas.get("title"))
        or _clean(metas.get("twitter:title")),
    }
    out.title = next((candidates[k] for k in TITLE_ORDER if candidates[k]), None)
    if out.title is None and page_title:
        out.title = _clean(clean_title(page_title, headings if headings is not None else _headings(tree)))

    out.description = (
        _clean(metas.get("og:description"))
        or _clean(metas.get("description"))
        or _clean(metas.get("twitter:description"))
        or _clean(ld.get("description"))
    )

    html = tree.css_first("html")
    out.lang = (
        _lang(html.attrs.get("lang") if html is not None else None)
        or _lang(html.attrs.get("xml:lang") if html is not None else None)
        or _lang(metas.get("og:locale"))
        or _lang(metas.get("content-language"))
        or _lang(content_language)
    )

    canonical = tree.css_first('link[rel~="canonical" i][href]')
    url = resolver.resolve(canonical.attrs.get("href")) if canonical is not None else None
    out.canonical_url = url or resolver.resolve(metas.get("og:url"))

    published = None
    for key in _DATE_KEYS:
        published = _clean(metas.get(key)) or (
            _clean(ld.get("datePublished")) if key == "datepublished" else None
        )
        if published:
            break
    if not published:
        time_node = tree.css_first("time[datetime]")
        published = _clean(time_node.attrs.get("datetime")) if time_node is not None else None
    out.published_time = published
    return out
