"""The peer a user would pick instead: Scrapy + trafilatura writing JSON Lines.

``python -m bench.scrapy_peer URLS_FILE OUT.jsonl --concurrency C --per-host P --delay D``
crawls exactly the listed URLs (no link following, like StreamCrawl at depth 0), obeys
robots.txt, resolves ``*.demo.test`` to 127.0.0.1 (the offline demo web) and extracts each
page's main text with trafilatura, one JSON object per page: url, status, title, text.
The politeness settings are passed in so both crawlers run with the same ones.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

__all__ = ["main"]


def _resolver_class() -> type:
    from scrapy.resolver import CachingThreadedResolver
    from twisted.internet import defer

    class DemoResolver(CachingThreadedResolver):  # type: ignore[misc]
        """*.demo.test -> 127.0.0.1; everything else as usual (the bench never leaves loopback)."""

        def getHostByName(self, name: str, timeout: Any = None) -> Any:
            if name.endswith(".demo.test"):
                return defer.succeed("127.0.0.1")
            return super().getHostByName(name, timeout)

    return DemoResolver


def _spider(urls: list[str]) -> type:
    import scrapy
    import trafilatura

    class PeerSpider(scrapy.Spider):  # type: ignore[misc]
        name = "peer"

        async def start(self) -> AsyncIterator[scrapy.Request]:
            for url in urls:
                yield scrapy.Request(url, dont_filter=True)

        def parse(self, response: Any) -> Iterator[dict[str, Any]]:
            text = trafilatura.extract(response.text, include_comments=False) or ""
            title = response.css("title::text").get()
            yield {"url": response.url, "status": response.status, "title": title, "text": text}

    return PeerSpider


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("urls", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--per-host", type=int, default=8)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--user-agent", default="StreamCrawl-bench-peer/1.0")
    args = parser.parse_args()

    from scrapy.crawler import CrawlerProcess

    urls = [line.strip() for line in args.urls.read_text().splitlines() if line.strip()]
    resolver = _resolver_class()
    sys.modules[__name__].DemoResolver = resolver  # type: ignore[attr-defined]
    process = CrawlerProcess(
        settings={
            "LOG_LEVEL": "WARNING",
            "ROBOTSTXT_OBEY": True,
            "USER_AGENT": args.user_agent,
            "CONCURRENT_REQUESTS": args.concurrency,
            "CONCURRENT_REQUESTS_PER_DOMAIN": args.per_host,
            "DOWNLOAD_DELAY": args.delay,
            "DOWNLOAD_DELAY_JITTER": 0,
            "AUTOTHROTTLE_ENABLED": False,
            "COOKIES_ENABLED": False,
            "TELNETCONSOLE_ENABLED": False,
            "RETRY_TIMES": 2,
            "DOWNLOAD_TIMEOUT": 30,
            "TWISTED_DNS_RESOLVER": f"{__name__}.DemoResolver",
            "REACTOR_THREADPOOL_MAXSIZE": 20,
            "FEEDS": {str(args.out): {"format": "jsonlines", "encoding": "utf8", "overwrite": True}},
        }
    )
    process.crawl(_spider(urls))
    process.start()
    stats = {"items": sum(1 for _ in args.out.open(encoding="utf-8"))} if args.out.exists() else {"items": 0}
    sys.stdout.write(json.dumps(stats) + "\n")


if __name__ == "__main__":
    main()
