"""The offline demo web: many generated sites (and the real pages of ../shared/data) on 127.0.0.1.

One aiohttp server answers for every ``*.demo.test`` host by its Host header; clients
resolve those names to 127.0.0.1 themselves (see :func:`resolve_overrides`,
:class:`DemoResolver`, :func:`chromium_host_rules`). ``python -m workers.demoweb --help``
lists the commands (serve, urls, tranco).
"""

from __future__ import annotations

from workers.demoweb.app import DemoWebConfig, make_app
from workers.demoweb.hosts import (
    DATA_HOSTS,
    DEMO_SUFFIX,
    READABILITY_HOST,
    RENDERTRON_HOST,
    SPA_HOST,
    DemoResolver,
    chromium_host_rules,
    demo_host,
    demo_scheme,
    ingestor_env,
    is_demo_host,
    resolve_overrides,
)
from workers.demoweb.server import DemoWeb, start_demoweb
from workers.demoweb.urls import KINDS, DemoURL, data_urls, demo_tranco_csv, demo_urls

__all__ = [
    "DATA_HOSTS",
    "DEMO_SUFFIX",
    "KINDS",
    "READABILITY_HOST",
    "RENDERTRON_HOST",
    "SPA_HOST",
    "DemoResolver",
    "DemoURL",
    "DemoWeb",
    "DemoWebConfig",
    "chromium_host_rules",
    "data_urls",
    "demo_host",
    "demo_scheme",
    "demo_tranco_csv",
    "demo_urls",
    "ingestor_env",
    "is_demo_host",
    "make_app",
    "resolve_overrides",
    "start_demoweb",
]
