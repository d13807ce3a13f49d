"""A resolver for offline runs (benchmarks, tests): it never asks DNS.

Names with a resolver override resolve as configured; every other name fails at once as
unresolvable, the way Chromium's ``--host-resolver-rules="MAP * ~NOTFOUND"`` makes the
baseline's browser fail them. Real pages reference hosts on the internet (CDNs,
analytics); in an offline run those lookups must neither leave the machine nor wait for
a DNS server.
"""

from __future__ import annotations

import ipaddress

from workers.errors import PermanentFetchError
from workers.ingestor.resolver import Resolver

__all__ = ["OverridesOnly"]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class OverridesOnly(Resolver):
    """:class:`Resolver` whose only names are its overrides (IP literals are checked as usual)."""

    async def resolve(self, host: str) -> list[str]:
        name = host.strip("[]").rstrip(".").lower()
        if not _is_ip(name) and self.override_for(name) is None:
            raise PermanentFetchError(
                f"DNS lookup of {host} not made: offline run, no resolver override for it"
            )
        return await super().resolve(host)
