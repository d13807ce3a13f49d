"""Demo host names and how clients resolve them to 127.0.0.1 without /etc/hosts.

Every demo host ends in :data:`DEMO_SUFFIX`. Generated sites are ``site-NNN.demo.test``
(any other ``<label>.demo.test`` is a generated site too); three hosts serve the real
pages of ../shared/data: ``readability.demo.test``, ``spa.demo.test`` and
``rendertron.demo.test``.

The demo web speaks plain HTTP (:data:`demo_scheme`), so a Tranco-style list of demo
hosts must become ``http://host:port/`` rather than the usual ``https://domain/``.
"""

from __future__ import annotations

import json
import socket
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "DATA_HOSTS",
    "DEMO_SUFFIX",
    "READABILITY_HOST",
    "RENDERTRON_HOST",
    "SPA_HOST",
    "DemoResolver",
    "chromium_host_rules",
    "demo_host",
    "demo_scheme",
    "ingestor_env",
    "is_demo_host",
    "resolve_overrides",
]

DEMO_SUFFIX: Final = "demo.test"
demo_scheme: Final = "http"
"""The demo web serves plain HTTP only; build URLs as ``http://host:port/...``."""

READABILITY_HOST: Final = f"readability.{DEMO_SUFFIX}"
SPA_HOST: Final = f"spa.{DEMO_SUFFIX}"
RENDERTRON_HOST: Final = f"rendertron.{DEMO_SUFFIX}"
DATA_HOSTS: Final = (READABILITY_HOST, SPA_HOST, RENDERTRON_HOST)
_LOOPBACK: Final = "127.0.0.1"


def demo_host(index: int) -> str:
    """Name of the generated site number ``index`` (1-based): ``site-007.demo.test``."""
    return f"site-{index:03d}.{DEMO_SUFFIX}"


def is_demo_host(host: str) -> bool:
    host = host.lower().rstrip(".")
    return host == DEMO_SUFFIX or host.endswith("." + DEMO_SUFFIX)


def resolve_overrides() -> dict[str, str]:
    """Value for STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES (JSON-encode it for the environment)."""
    return {f"*.{DEMO_SUFFIX}": _LOOPBACK}


def ingestor_env() -> dict[str, str]:
    """Environment an ingestor needs to crawl the demo web: static DNS + loopback allowed."""
    return {
        "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": json.dumps(resolve_overrides()),
        "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "true",
    }


def chromium_host_rules() -> str:
    """Value for Chromium's ``--host-resolver-rules`` so a browser reaches the demo hosts."""
    return f"MAP *.{DEMO_SUFFIX} {_LOOPBACK}"


class DemoResolver(AbstractResolver):
    """aiohttp resolver: demo hosts go to 127.0.0.1, anything else fails (no internet).

    ``aiohttp.TCPConnector(resolver=DemoResolver())`` lets a plain aiohttp client (tests,
    the benchmark baseline) fetch ``http://site-001.demo.test:PORT/`` and follow redirects.
    """

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if not is_demo_host(host):
            raise OSError(f"DemoResolver only resolves *.{DEMO_SUFFIX}, not {host!r}")
        return [
            ResolveResult(
                hostname=host,
                host=_LOOPBACK,
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        return None
