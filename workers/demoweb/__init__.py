"""The offline demo web: many generated sites (and the real pages of ../shared/data) on 127.0.0.1.

One aiohttp server answers for every ``*.demo.test`` host by its Host header; clients
resolve those names to 127.0.0.1 themselves: the ingestor with
``STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES=json.dumps(resolve_overrides())`` (see
:func:`ingestor_env`), aiohttp clients with :class:`DemoResolver`, Chromium with
``--host-resolver-rules=chromium_host_rules()``. The web is plain HTTP
(:data:`demo_scheme`), so a Tranco CSV of demo hosts must be read as ``http://host:port/``.

In tests::

    async with DemoWeb(port=0) as web:                      # in this event loop
        urls = demo_urls(port=web.port, hosts=60, per_host=10)
    web = await start_demoweb(processes=2)                  # separate server processes
    ...; await web.stop()

From a shell (``make run``, benchmarks)::

    python -m workers.demoweb --port 0 --processes 2 --port-file .streamcrawl/demoweb.port
    python -m workers.demoweb urls --port P --hosts 60 --per-host 10 [--json] > urls.txt
    python -m workers.demoweb tranco --hosts 60 --port P > demo.csv
    python -m workers.demoweb bench --port P --clients 2 --server-pid PID

Each generated site is a tree of pages and links (graph.py, sizes in shape.py, sitemaps in
sitemaps.py) that the server renders; the expected outcome of every kind of URL is in
kinds.KINDS. What a correct crawl of a list with a scope requests and stores comes from the
same graph, never from crawling::

    from workers.demoweb.oracle import expect_crawl, sitemap_urls
    expectation = expect_crawl(["http://site-001.demo.test:P/"], Scope(mode="domain", max_depth=3))
    expectation.stored, expectation.urls[url].outcome, expectation.dropped, expectation.exact

With ``DemoWebConfig(access_log_dir=...)`` (``--access-log-dir``) every request is logged,
one file per server process; ``accesslog.read_access_log(dir)`` merges them.
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
from workers.demoweb.loadgen import fetch_loop, run_bench
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
    "fetch_loop",
    "ingestor_env",
    "is_demo_host",
    "make_app",
    "resolve_overrides",
    "run_bench",
    "start_demoweb",
]
