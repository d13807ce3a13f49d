"""The discovery stage: records every URL's outcome in the crawl ledger and follows links.

``links.py`` decides which links of a stored page are candidates, ``sitemaps.py`` reads
robots.txt ``Sitemap:`` lines and sitemap files, ``daemon.py`` is the worker.
"""

from __future__ import annotations

from workers.discovery.links import PageLinks, page_links
from workers.discovery.sitemaps import SitemapFile, parse_sitemap, robots_sitemaps

__all__ = ["PageLinks", "SitemapFile", "page_links", "parse_sitemap", "robots_sitemaps"]
