"""Resolver: static overrides, DNS cache, SSRF guard after resolution."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from workers.errors import BlockedError, PermanentFetchError
from workers.ingestor.resolver import AiohttpResolver, Resolver, refusal_reason


class CountingResolver(Resolver):
    """System lookups replaced by a table (unit tests never query real DNS)."""

    def __init__(self, table: dict[str, list[str]], **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.table = table
        self.calls = 0

    async def _system_lookup(self, host: str) -> list[str]:
        self.calls += 1
        await asyncio.sleep(0.01)
        if host not in self.table:
            raise PermanentFetchError(f"DNS lookup of {host} failed: Name or service not known")
        return self.table[host]


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        ("10.0.0.1", "a private address"),
        ("172.16.5.4", "a private address"),
        ("192.168.1.1", "a private address"),
        ("127.0.0.1", "a loopback address"),
        ("::1", "a loopback address"),
        ("169.254.1.1", "a link-local address"),
        ("fe80::1", "a link-local address"),
        ("224.0.0.1", "a multicast address"),
        ("0.0.0.0", "an unspecified address"),
        ("240.0.0.1", "a reserved address"),
        ("100.64.0.1", "a non-public address"),
        ("::ffff:127.0.0.1", "a loopback address"),
        ("fc00::1", "a private address"),
        ("169.254.169.254", "a cloud metadata address (always refused)"),
        ("fd00:ec2::254", "a cloud metadata address (always refused)"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_refusal_reason(ip: str, reason: str | None) -> None:
    assert refusal_reason(ipaddress.ip_address(ip), allow_private=False) == reason


def test_allow_private_still_refuses_metadata() -> None:
    assert refusal_reason(ipaddress.ip_address("127.0.0.1"), allow_private=True) is None
    assert refusal_reason(ipaddress.ip_address("10.0.0.1"), allow_private=True) is None
    assert "metadata" in (refusal_reason(ipaddress.ip_address("169.254.169.254"), allow_private=True) or "")


async def test_overrides_exact_and_suffix() -> None:
    r = Resolver(
        overrides={"*.demo.test": "127.0.0.1", "*.a.demo.test": "127.0.0.2", "exact.test": "127.0.0.3"},
        allow_private_networks=True,
    )
    assert await r.resolve("x.demo.test") == ["127.0.0.1"]
    assert await r.resolve("X.Demo.Test.") == ["127.0.0.1"]  # case and trailing dot
    assert await r.resolve("b.a.demo.test") == ["127.0.0.2"]  # longest suffix wins
    assert await r.resolve("exact.test") == ["127.0.0.3"]
    assert r.override_for("demo.test") is None  # *.suffix does not match the apex
    assert r.override_for("sub.exact.test") is None


def test_override_must_be_an_ip() -> None:
    with pytest.raises(ValueError, match="does not appear to be an IPv4 or IPv6 address"):
        Resolver(overrides={"x.test": "not-an-ip"})


async def test_guard_applies_to_overrides_and_literals() -> None:
    r = Resolver(overrides={"meta.test": "169.254.169.254", "lan.test": "192.168.0.10"})
    with pytest.raises(
        BlockedError, match=r"meta.test resolves to 169.254.169.254, which is a cloud metadata"
    ):
        await r.resolve("meta.test")
    with pytest.raises(
        BlockedError, match=r"lan.test resolves to 192.168.0.10, which is a private address; add its network"
    ):
        await r.resolve("lan.test")
    with pytest.raises(BlockedError, match=r"SSRF guard: 10.1.1.1 is a private address"):
        await r.resolve("10.1.1.1")
    with pytest.raises(BlockedError, match="loopback"):
        await r.resolve("[::1]")
    assert await r.resolve("93.184.216.34") == ["93.184.216.34"]


async def test_guard_checks_every_resolved_address() -> None:
    r = CountingResolver({"mixed.test": ["93.184.216.34", "10.0.0.5"]})
    with pytest.raises(BlockedError, match=r"10.0.0.5"):
        await r.resolve("mixed.test")


async def test_lookups_are_cached_and_shared() -> None:
    r = CountingResolver({"site.test": ["93.184.216.34"]})
    results = await asyncio.gather(*(r.resolve("site.test") for _ in range(10)))
    assert results == [["93.184.216.34"]] * 10
    assert await r.resolve("site.test") == ["93.184.216.34"]
    assert r.calls == 1


async def test_failures_are_cached_briefly() -> None:
    now = [0.0]
    r = CountingResolver({}, negative_ttl_s=5.0, clock=lambda: now[0])
    for _ in range(2):
        with pytest.raises(PermanentFetchError, match=r"DNS lookup of gone.test failed"):
            await r.resolve("gone.test")
    assert r.calls == 1
    now[0] = 6.0
    with pytest.raises(PermanentFetchError):
        await r.resolve("gone.test")
    assert r.calls == 2


async def test_cache_expires_and_is_bounded() -> None:
    now = [0.0]
    table = {f"h{i}.test": ["93.184.216.34"] for i in range(5)}
    r = CountingResolver(table, ttl_s=10.0, max_entries=3, clock=lambda: now[0])
    for host in table:
        await r.resolve(host)
    assert len(r._cache) == 3
    now[0] = 11.0
    await r.resolve("h4.test")
    assert r.calls == 6


async def test_cancelled_waiter_does_not_cancel_the_lookup() -> None:
    r = CountingResolver({"site.test": ["93.184.216.34"]})
    first = asyncio.ensure_future(r.resolve("site.test"))
    second = asyncio.ensure_future(r.resolve("site.test"))
    await asyncio.sleep(0)
    first.cancel()
    assert await second == ["93.184.216.34"]


async def test_system_dns_of_localhost_is_guarded() -> None:
    with pytest.raises(BlockedError, match=r"localhost resolves to .*loopback"):
        await Resolver().resolve("localhost")
    assert "127.0.0.1" in await Resolver(allow_private_networks=True).resolve("localhost")


async def test_aiohttp_adapter() -> None:
    adapter = AiohttpResolver(Resolver(overrides={"*.demo.test": "127.0.0.1"}, allow_private_networks=True))
    (result,) = await adapter.resolve("a.demo.test", 8080)
    assert (result["host"], result["port"], result["hostname"]) == ("127.0.0.1", 8080, "a.demo.test")
    with pytest.raises(BlockedError):
        await AiohttpResolver(Resolver()).resolve("127.0.0.1", 80)


async def test_allowed_networks_admit_exactly_their_addresses() -> None:
    from workers.errors import BlockedError, ConfigError
    from workers.ingestor.resolver import Resolver

    resolver = Resolver(
        overrides={"demo.test": "127.0.0.1", "canary.test": "127.0.0.2", "meta.test": "169.254.169.254"},
        allowed_networks=["127.0.0.1/32"],
    )
    assert await resolver.resolve("demo.test") == ["127.0.0.1"]
    for host in ("canary.test", "meta.test", "10.0.0.1", "[::1]"):
        with pytest.raises(BlockedError):
            await resolver.resolve(host)
    with pytest.raises(ConfigError, match="ALLOWED_NETWORKS"):
        Resolver(allowed_networks=["127.0.0.1/33"])
