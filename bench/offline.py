"""Offline runs of the renderer (benchmarks, tests): pages without a fetch, names without DNS.

:func:`fetched_page` is the RawPage the ingestor would have produced for a body already
at hand. :class:`OverridesOnly` is a resolver that never asks DNS: names with a resolver
override resolve as configured; every other name fails at once as unresolvable, the way
Chromium's ``--host-resolver-rules="MAP * ~NOTFOUND"`` makes the baseline's browser fail
them. Real pages reference hosts on the internet (CDNs, analytics); in an offline run
those lookups must neither leave the machine nor wait for a DNS server.
"""

from __future__ import annotations

import ipaddress
import time

from workers.errors import PermanentFetchError
from workers.ingestor.resolver import Resolver
from workers.messages import RawPage, compress_html
from workers.urls import host_of, url_hash

__all__ = ["OverridesOnly", "fetched_page"]


def fetched_page(url: str, body: bytes, *, charset: str | None = "utf-8") -> RawPage:
    """The RawPage (status 200, HTML) the ingestor would produce for ``url`` serving ``body``."""
    return RawPage(
        url=url,
        url_hash=url_hash(url),
        host=host_of(url),
        final_url=url,
        status=200,
        content_type="text/html",
        html_zstd=compress_html(body),
        content_hash="0" * 32,
        fetched_at=time.time(),
        body_bytes=len(body),
        charset=charset,
    )


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
