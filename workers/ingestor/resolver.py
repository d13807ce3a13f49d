"""Name resolution for the ingestor, with the SSRF guard applied after resolution.

One :class:`Resolver` serves both HTTP transports (the aiohttp one through
:class:`AiohttpResolver`, httpcore's through ``client.GuardedNetworkBackend``), so a
host resolves the same way whichever transport fetches it:

1. static overrides from ``IngestorSettings.resolve_overrides``: an exact host, or
   ``*.suffix`` matching any subdomain of ``suffix`` (not ``suffix`` itself; the longest
   matching suffix wins);
2. otherwise DNS through c-ares (:class:`~workers.ingestor.dns.AsyncDNS`: no thread pool,
   its own ``dns_timeout_s``), results cached for ``ttl_s``, failures for
   ``negative_ttl_s``, concurrent lookups of one host shared.

Guard-checked answers are memoised until they expire, so asking again (the fetcher
resolves every hop before taking its politeness slot, then the transports resolve on
each new connection) costs a dictionary lookup.

Every address is then checked by :func:`refusal_reason`: private, loopback, link-local,
multicast, reserved, unspecified, shared (CGNAT) and other non-global addresses are refused
unless ``allow_private_networks`` is set or the address lies in one of ``allowed_networks``
(CIDRs: tests allow exactly the demo web's addresses). Cloud metadata endpoints are refused always:
no crawl has a reason to fetch them. IP literals in URLs go through the same check.
Refusals raise :class:`~workers.errors.BlockedError`; lookups that fail for good raise
:class:`~workers.errors.PermanentFetchError`, temporary resolver failures
:class:`~workers.errors.TransientFetchError`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence

from aiohttp.abc import AbstractResolver, ResolveResult

from workers.errors import BlockedError, ConfigError, PermanentFetchError, TransientFetchError
from workers.ingestor.dns import AsyncDNS

__all__ = [
    "METADATA_ADDRESSES",
    "AiohttpResolver",
    "Network",
    "Resolver",
    "parse_networks",
    "refusal_reason",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "100.100.100.200",  # Alibaba Cloud
        "fd00:ec2::254",  # AWS IMDS over IPv6
    )
)
_ALLOW_HINT = (
    "add its network to STREAMCRAWL_INGESTOR_ALLOWED_NETWORKS (or set "
    "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS=true) to allow it"
)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(cidrs: Sequence[str]) -> tuple[Network, ...]:
    """``["127.0.0.1/32", "10.0.0.0/8"]`` -> networks; a typo raises ConfigError naming the setting."""
    out: list[Network] = []
    for cidr in cidrs:
        try:
            out.append(ipaddress.ip_network(cidr.strip(), strict=False))
        except ValueError as exc:
            raise ConfigError(
                f"STREAMCRAWL_INGESTOR_ALLOWED_NETWORKS: {cidr!r} is not a CIDR ({exc})"
            ) from exc
    return tuple(out)


def refusal_reason(
    ip: IPAddress, *, allow_private: bool, allowed_networks: Sequence[Network] = ()
) -> str | None:
    """Why the SSRF guard refuses ``ip``, or None when it may be fetched."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata address (always refused)"
    if allow_private or any(ip.version == net.version and ip in net for net in allowed_networks):
        return None
    for attribute, what in (
        ("is_loopback", "a loopback"),
        ("is_link_local", "a link-local"),
        ("is_multicast", "a multicast"),
        ("is_unspecified", "an unspecified"),
        ("is_reserved", "a reserved"),
        ("is_private", "a private"),
    ):
        if getattr(ip, attribute):
            return f"{what} address"
    if not ip.is_global:
        return "a non-public address"
    return None


class Resolver:
    """Resolve host names to guard-checked IP addresses (see the module docstring)."""

    def __init__(
        self,
        *,
        overrides: Mapping[str, str] | None = None,
        allow_private_networks: bool = False,
        allowed_networks: Sequence[str] = (),
        ttl_s: float = 60.0,
        negative_ttl_s: float = 10.0,
        max_entries: int = 10_000,
        dns_timeout_s: float = 5.0,
        nameservers: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._exact: dict[str, str] = {}
        self._suffixes: list[tuple[str, str]] = []
        for pattern, ip in (overrides or {}).items():
            ipaddress.ip_address(ip)  # a typo in the overrides should fail at start-up
            key = pattern.strip().rstrip(".").lower()
            if key.startswith("*."):
                self._suffixes.append(("." + key[2:], ip))
            else:
                self._exact[key] = ip
        self._suffixes.sort(key=lambda item: len(item[0]), reverse=True)
        self._allow_private = allow_private_networks
        self._allowed_networks = parse_networks(allowed_networks)
        self._ttl = ttl_s
        self._negative_ttl = negative_ttl_s
        self._max_entries = max_entries
        self._clock = clock
        # host -> (expiry, addresses or the error a failed lookup raised)
        self._cache: OrderedDict[str, tuple[float, list[str] | Exception]] = OrderedDict()
        self._pending: dict[str, asyncio.Future[list[str]]] = {}
        # host -> (expiry, guard-checked addresses): the hot path of resolve()
        self._checked: dict[str, tuple[float, list[str]]] = {}
        self._dns = AsyncDNS(timeout_s=dns_timeout_s, nameservers=nameservers)

    def override_for(self, host: str) -> str | None:
        """The static address configured for ``host``, if any."""
        ip = self._exact.get(host)
        if ip is not None:
            return ip
        for suffix, ip in self._suffixes:
            if host.endswith(suffix):
                return ip
        return None

    def check(self, host: str, ip: str) -> None:
        """Raise BlockedError if the SSRF guard refuses ``ip`` (an address of ``host``)."""
        reason = refusal_reason(
            ipaddress.ip_address(ip),
            allow_private=self._allow_private,
            allowed_networks=self._allowed_networks,
        )
        if reason is not None:
            shown = f"{host} is" if host == ip else f"{host} resolves to {ip}, which is"
            hint = "" if "always" in reason else f"; {_ALLOW_HINT}"
            raise BlockedError(f"SSRF guard: {shown} {reason}{hint}")

    def check_literal(self, host: str) -> bool:
        """Guard-check ``host`` if it is an IP literal; True when it was one."""
        try:
            ip = ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return False
        self.check(host, str(ip))
        return True

    async def resolve(self, host: str) -> list[str]:
        """Guard-checked addresses of ``host``, IPv4 first. Raises on refusal or failure."""
        entry = self._checked.get(host)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        key = host
        host = host.strip("[]").rstrip(".").lower()
        if self.check_literal(host):
            return [host]
        override = self.override_for(host)
        addresses = [override] if override is not None else await self._lookup(host)
        for ip in addresses:
            self.check(host, ip)
        if len(self._checked) >= self._max_entries:
            self._checked.clear()  # rare; the lookup cache below keeps the answers
        self._checked[key] = (self._clock() + (self._ttl if override is None else 3600.0), addresses)
        return addresses

    async def aclose(self) -> None:
        """Release the DNS channel."""
        await self._dns.aclose()

    async def _lookup(self, host: str) -> list[str]:
        entry = self._cache.get(host)
        if entry is not None:
            expiry, value = entry
            if expiry > self._clock():
                if isinstance(value, Exception):
                    raise type(value)(str(value))  # a fresh error: no traceback pile-up
                return value
            del self._cache[host]
        task = self._pending.get(host)
        if task is None:
            # A task of its own: a cancelled first requester must not cancel the others.
            task = asyncio.ensure_future(self._system_lookup(host))
            self._pending[host] = task
            task.add_done_callback(lambda done: self._settled(host, done))
        return await asyncio.shield(task)

    def _settled(self, host: str, task: asyncio.Future[list[str]]) -> None:
        if self._pending.get(host) is task:
            del self._pending[host]
        if task.cancelled():
            return
        exc = task.exception()
        if exc is None:
            self._remember(host, task.result(), self._ttl)
        elif isinstance(exc, PermanentFetchError | TransientFetchError):
            self._remember(host, exc, self._negative_ttl)

    def _remember(self, host: str, value: list[str] | Exception, ttl: float) -> None:
        self._cache[host] = (self._clock() + ttl, value)
        while len(self._cache) > self._max_entries:
            self._cache.popitem(last=False)

    async def _system_lookup(self, host: str) -> list[str]:
        return await self._dns.lookup(host)


class AiohttpResolver(AbstractResolver):
    """aiohttp's resolver interface over :class:`Resolver` (guard included).

    aiohttp calls it for every new connection (the connector's own DNS cache is turned
    off, so the guard sees every lookup). Refusals and failures propagate as the
    StreamCrawl errors above: aiohttp only wraps ``OSError``.
    """

    def __init__(self, resolver: Resolver) -> None:
        self._resolver = resolver

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        out: list[ResolveResult] = []
        for ip in await self._resolver.resolve(host):
            ip_family = socket.AF_INET6 if ":" in ip else socket.AF_INET
            if family not in (socket.AF_UNSPEC, ip_family):
                continue
            out.append(
                ResolveResult(
                    hostname=host,
                    host=ip,
                    port=port,
                    family=ip_family,
                    proto=0,
                    flags=socket.AI_NUMERICHOST,
                )
            )
        if not out:
            raise PermanentFetchError(f"{host} has no address of family {family.name}")
        return out

    async def close(self) -> None:
        return None
