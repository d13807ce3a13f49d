"""robots.txt cache with an in-memory fetch function and a fake clock."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest

from workers.errors import BlockedError, PermanentFetchError, TransientFetchError
from workers.ingestor.robots import RobotsCache, RobotsDisallowed, origin_of, robots_url


@dataclass
class Answer:
    status: int
    body: bytes


class FakeSite:
    def __init__(self, answers: dict[str, tuple[int, bytes] | Exception]) -> None:
        self.answers = answers
        self.calls: list[str] = []

    async def __call__(self, url: str) -> Answer:
        self.calls.append(url)
        await asyncio.sleep(0.01)
        answer = self.answers[url]
        if isinstance(answer, Exception):
            raise answer
        return Answer(*answer)


def cache(site: FakeSite, now: list[float], **kwargs: float) -> RobotsCache:
    options = {"ttl_s": 100.0, "crawl_delay_cap_s": 5.0, "unreachable_ttl_s": 10.0}
    options.update(kwargs)
    return RobotsCache(site, token="StreamCrawl", clock=lambda: now[0], **options)  # type: ignore[arg-type]


def test_origin_of() -> None:
    assert origin_of("https://Example.com/a?b") == "https://example.com:443"
    assert origin_of("http://example.com:8080/") == "http://example.com:8080"
    assert origin_of("http://[::1]/x") == "http://[::1]:80"
    assert robots_url("https://Example.com:443/a?b") == "https://example.com/robots.txt"
    assert robots_url("http://example.com:8080/x") == "http://example.com:8080/robots.txt"


async def test_disallow_for_our_token_and_crawl_delay() -> None:
    robots = b"User-agent: streamcrawl\nDisallow: /private\nCrawl-delay: 2\n\nUser-agent: *\nDisallow: /\n"
    site = FakeSite({"https://a.test:443/robots.txt": (200, robots)})
    rc = cache(site, [0.0])
    rules = await rc.check("https://a.test/public")
    assert rules.crawl_delay == 2.0
    with pytest.raises(
        RobotsDisallowed, match=r"robots.txt of https://a.test:443 disallows /private\?x=1 for StreamCrawl"
    ) as caught:
        await rc.check("https://a.test/private?x=1")
    assert isinstance(caught.value, BlockedError)


async def test_crawl_delay_is_capped_and_request_rate_counts() -> None:
    site = FakeSite(
        {
            "http://slow.test:80/robots.txt": (200, b"User-agent: *\nCrawl-delay: 60\n"),
            "http://rate.test:80/robots.txt": (200, b"User-agent: *\nRequest-rate: 1/4\n"),
            "http://none.test:80/robots.txt": (200, b"User-agent: *\nDisallow:\n"),
        }
    )
    rc = cache(site, [0.0])
    assert (await rc.rules_for("http://slow.test/")).crawl_delay == 5.0
    assert (await rc.rules_for("http://rate.test/")).crawl_delay == 4.0
    assert (await rc.rules_for("http://none.test/")).crawl_delay is None


async def test_4xx_allows_everything() -> None:
    site = FakeSite({"http://a.test:80/robots.txt": (404, b"")})
    rules = await cache(site, [0.0]).check("http://a.test/anything")
    assert rules.parser is None and rules.unreachable is None


@pytest.mark.parametrize(
    "answer", [(500, b""), (429, b""), TransientFetchError("connect timeout: no connection to a.test")]
)
async def test_unreachable_disallows_for_a_while(answer: tuple[int, bytes] | Exception) -> None:
    now = [0.0]
    site = FakeSite({"http://a.test:80/robots.txt": answer})
    rc = cache(site, now)
    with pytest.raises(TransientFetchError, match=r"robots.txt of http://a.test:80 is unreachable") as caught:
        await rc.check("http://a.test/page")
    assert caught.value.retry_after == 10.0
    now[0] = 4.0
    with pytest.raises(TransientFetchError) as caught:
        await rc.check("http://a.test/other")
    assert caught.value.retry_after == 6.0
    assert len(site.calls) == 1
    site.answers["http://a.test:80/robots.txt"] = (200, b"")
    now[0] = 11.0
    await rc.check("http://a.test/page")  # fetched again after the short TTL
    assert len(site.calls) == 2


async def test_dns_failure_propagates_and_is_not_cached() -> None:
    site = FakeSite({"http://gone.test:80/robots.txt": PermanentFetchError("DNS lookup of gone.test failed")})
    rc = cache(site, [0.0])
    for _ in range(2):
        with pytest.raises(PermanentFetchError, match="DNS lookup"):
            await rc.check("http://gone.test/")
    assert len(site.calls) == 2 and len(rc) == 0


async def test_fetched_once_for_concurrent_requests_and_refetched_after_ttl() -> None:
    now = [0.0]
    site = FakeSite({"http://a.test:80/robots.txt": (200, b"User-agent: *\nAllow: /\n")})
    rc = cache(site, now)
    await asyncio.gather(*(rc.check(f"http://a.test/{i}") for i in range(20)))
    assert len(site.calls) == 1
    now[0] = 101.0
    await rc.check("http://a.test/")
    assert len(site.calls) == 2


async def test_origins_are_separate_and_the_table_is_bounded() -> None:
    site = FakeSite({f"http://h{i}.test:80/robots.txt": (200, b"") for i in range(5)})
    site.answers["https://h0.test:443/robots.txt"] = (200, b"User-agent: *\nDisallow: /\n")
    rc = RobotsCache(site, token="StreamCrawl", ttl_s=100.0, crawl_delay_cap_s=1.0, max_entries=3)
    await rc.check("http://h0.test/x")
    with pytest.raises(BlockedError):
        await rc.check("https://h0.test/x")
    for i in range(5):
        await rc.check(f"http://h{i}.test/")
    assert len(rc) == 3


async def test_robots_txt_itself_is_always_allowed() -> None:
    site = FakeSite({"http://a.test:80/robots.txt": (200, b"User-agent: *\nDisallow: /\n")})
    await cache(site, [0.0]).check("http://a.test/robots.txt")


async def test_refresh_refetches_and_returns_the_file() -> None:
    robots = b"User-agent: *\nDisallow: /x\nSitemap: https://a.test/sitemap.xml\n"
    site = FakeSite({"https://a.test:443/robots.txt": (200, robots)})
    rc = cache(site, [0.0])
    await rc.check("https://a.test/")
    rules, answer = await rc.refresh("https://a.test/robots.txt")
    assert answer is not None and answer.body == robots and answer.status == 200
    assert len(site.calls) == 2 and rules.parser is not None
    with pytest.raises(RobotsDisallowed):
        await rc.check("https://a.test/x")  # the refreshed rules are cached
    assert len(site.calls) == 2
    site.answers["https://a.test:443/robots.txt"] = (503, b"")
    rules, answer = await rc.refresh("https://a.test/")
    assert answer is None and rules.unreachable == "HTTP 503"
