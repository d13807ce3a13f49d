"""Sitemaps of a generated site: a sitemap index with a gzipped and a plain child, and a text sitemap.

robots.txt names two (``Sitemap: /sitemap.xml`` and ``Sitemap: /sitemaps/extra.txt``)::

    /sitemap.xml              <sitemapindex> -> /sitemaps/sections.xml, /sitemaps/pages.xml.gz
    /sitemaps/sections.xml    <urlset>: home, every section, the blog (another host), a host-case duplicate
    /sitemaps/pages.xml.gz    gzip <urlset> (served as application/gzip): the first listing's articles,
                              articles no page links to, the noindex page, /private/1, a tracking duplicate
    /sitemaps/extra.txt       text/plain, one URL a line: more unlinked articles and a PDF (an asset)

So a sitemap-seeded crawl finds pages a link crawl never does, and "in scope" matters: the
blog is out of a host scope but inside a domain scope, the PDF is an asset and is dropped.
:func:`sitemap_entries` lists every URL exactly as the files write it; the oracle reads it
instead of parsing the files.
"""

from __future__ import annotations

import gzip
from html import escape
from typing import Final

from workers.demoweb.graph import article_path
from workers.demoweb.shape import BLOG_PREFIX, main_host_of, site_shape
from workers.demoweb.site import PRIVATE_PREFIX, Origin

__all__ = ["ROBOTS_SITEMAPS", "SITEMAP_INDEX", "sitemap_entries", "sitemap_file"]

SITEMAP_INDEX: Final = "/sitemap.xml"
_SECTIONS: Final = "/sitemaps/sections.xml"
_PAGES: Final = "/sitemaps/pages.xml.gz"
_TEXT: Final = "/sitemaps/extra.txt"
ROBOTS_SITEMAPS: Final = (SITEMAP_INDEX, _TEXT)
"""Paths robots.txt announces with ``Sitemap:`` lines."""
_UNLINKED: Final = 6
"""Articles /article/1 .. /article/6 exist but no page links to them (tree articles are >= 1101)."""
_LASTMOD: Final = "2024-06-01"
_NS: Final = "http://www.sitemaps.org/schemas/sitemap/0.9"


def _lists(origin: Origin) -> dict[str, list[str]]:
    base = origin.base
    main = main_host_of(origin.host)
    if main is not None:  # a blog: its home in one file, its posts in the other
        shape = site_shape(main, link_hosts=origin.link_hosts)
        return {
            _SECTIONS: [f"{base}/"],
            _PAGES: [f"{base}/post/{k}" for k in range(1, shape.blog_posts + 1)],
            _TEXT: [],
        }
    shape = site_shape(origin.host, link_hosts=origin.link_hosts)
    sections = [f"{base}/"] + [f"{base}/section/{s}" for s in range(1, shape.sections + 1)]
    sections += [
        origin.url(BLOG_PREFIX + origin.host) + "/",
        f"http://{origin.host.upper()}{origin.port_suffix}/",
    ]
    pages = [base + article_path(1, 1, i) for i in range(1, shape.articles_per_page + 1)]
    pages += [f"{base}/article/{k}" for k in range(1, _UNLINKED - 1)]
    pages += [f"{base}/noindex/1", f"{base}{PRIVATE_PREFIX}1"]
    pages.append(f"{base}{article_path(1, 1, 1)}?utm_source=sitemap&utm_medium=xml")
    text = [f"{base}/article/{k}" for k in range(_UNLINKED - 1, _UNLINKED + 1)] + [f"{base}/files/1.pdf"]
    return {_SECTIONS: sections, _PAGES: pages, _TEXT: text}


def sitemap_entries(origin: Origin) -> list[str]:
    """Every page URL the host's sitemaps list (robots.txt's and /sitemap.xml's), as written."""
    return [url for urls in _lists(origin).values() for url in urls]


def _urlset(urls: list[str]) -> bytes:
    body = "".join(f"<url><loc>{escape(u)}</loc><lastmod>{_LASTMOD}</lastmod></url>" for u in urls)
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<urlset xmlns="{_NS}">{body}</urlset>\n'.encode()


def sitemap_file(origin: Origin, path: str) -> tuple[bytes, str] | None:
    """(body, Content-Type) of a sitemap file, or None when ``path`` is not one."""
    if path == SITEMAP_INDEX:
        items = "".join(
            f"<sitemap><loc>{origin.base}{child}</loc><lastmod>{_LASTMOD}</lastmod></sitemap>"
            for child in (_SECTIONS, _PAGES)
        )
        xml = f'<?xml version="1.0" encoding="UTF-8"?>\n<sitemapindex xmlns="{_NS}">{items}</sitemapindex>\n'
        return xml.encode(), "application/xml"
    lists = _lists(origin)
    if path == _SECTIONS:
        return _urlset(lists[_SECTIONS]), "application/xml"
    if path == _PAGES:  # mtime=0: the same bytes in every process and run
        return gzip.compress(_urlset(lists[_PAGES]), mtime=0), "application/gzip"
    if path == _TEXT:
        return "".join(u + "\n" for u in lists[_TEXT]).encode(), "text/plain; charset=utf-8"
    return None
