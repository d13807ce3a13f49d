"""The ingestor's fetch layer: one ``CrawlRequest`` in, one ``RawPage`` or a reasoned error out.

The Kafka loop (consume ``crawl.request``, produce ``raw.page`` / ``raw.sitemap``, re-queue
to ``crawl.request``, dead-letter to ``raw.page.dlq``) lives in the daemon; it calls this API::

    fetcher = Fetcher(settings.ingestor, max_page_bytes=settings.worker.max_page_bytes)
    async with fetcher:
        page: RawPage = await fetcher.fetch(request)   # request: CrawlRequest

``fetch`` may be called from many tasks at once. It waits its turn (per host:
``per_host_concurrency``, ``per_host_delay_s`` or the site's Crawl-delay up to
``crawl_delay_cap_s``; per IP address: ``per_ip_concurrency``, ``per_ip_delay_s`` or the
Crawl-delay; globally: ``concurrency``, lowered while the event loop lags beyond
``max_loop_lag_s``), so the caller should bound how many fetches it has outstanding (for
example a few times ``concurrency``) rather than start one task per record.

Returns a :class:`~workers.messages.RawPage` that carries the request's ``ctx``, ``batch``,
``rank``, ``request_id`` and ``kind`` forward:

- ``kind="page"``: ``status`` 2xx, ``final_url`` (canonical, see
  :func:`workers.urls.canonicalize`) after at most ``max_redirects`` redirects, ``redirects``
  the URLs that redirected (in order), ``http_version`` (``HTTP/1.1``, ``HTTP/2``);
  ``html_zstd`` the body compressed by ``compress_html``; bodies above ``max_page_bytes``
  are cut there while streaming (the rest is never downloaded), ``truncated=True``,
  ``body_bytes`` the size announced or received; ``content_hash`` blake2b-128 hex of the
  body kept (for a truncated page: of the kept prefix, since the rest was never read);
  ``charset`` from BOM, Content-Type, ``<meta>``, else UTF-8 validity, else windows-1252;
- for WARC, as received on the final hop: ``status_reason``, ``response_headers`` (every
  header in order, repeated ones too, ``[name, value]``), ``request_headers`` (what was
  sent: Host, User-Agent, Accept, Accept-Encoding, conditional headers) and ``peer_ip``;
- ``headers`` (the kept subset): content-type, content-length, content-encoding,
  content-language, last-modified, etag, cache-control, expires, date, link, server,
  x-robots-tag;
- ``timings`` in ms: ``wait`` (politeness queue), ``ttfb`` and ``download`` of the final
  hop, ``total`` network time of all hops;
- skipped pages (no body, record them, do not dead-letter them): ``skipped="robots"``
  (robots.txt disallows the URL; ``status`` 0, nothing was requested); a non-HTML
  Content-Type (or a missing/generic one whose body does not sniff as HTML) gives
  ``skipped="non-html content-type: <type>"``; a body labelled HTML whose first KB is
  binary (NULs, control bytes, an image/PDF/archive signature) gives ``skipped="binary"``;
- a request with ``etag`` / ``last_modified`` sends ``If-None-Match`` / ``If-Modified-Since``;
  a ``304`` answer gives ``status=304``, no body, ``skipped=None`` ("unchanged");
- ``kind="robots"``: the origin's robots.txt through the RobotsCache (politeness, SSRF
  guard, 512 KiB cap; the cache is refreshed): ``final_url`` the robots.txt URL, the body
  as served (a 4xx gives its status and no body: "no robots.txt");
- ``kind="sitemap"``: the URL read with ``sitemap_max_bytes`` as its cap, content types
  text/xml, application/xml, application/gzip, text/plain (others are skipped with the
  type); gzip bodies stay gzipped (the discovery stage decompresses with its cap).

Raises (from :mod:`workers.errors`; messages are written for the dead-letter topic):

- ``TransientFetchError`` (the daemon re-queues it with a delay): timeouts, connection
  failures, 408/429/5xx (``retry_after`` from Retry-After), DNS server failures or
  timeouts, robots.txt unreachable (``retry_after`` = when it is fetched again), and its
  subclass ``HostPaused`` while the host's circuit breaker is open;
- ``PermanentFetchError`` (``status`` set for HTTP errors): 4xx including 404, DNS name
  not found, TLS failure, too many redirects, an invalid URL or redirect target, a body
  too large for a Kafka record;
- ``BlockedError``: SSRF guard refusal.

How it fetches: httpx requests and responses throughout; ``http://`` over a small
httpx transport on one aiohttp session (httpx's own pool is far slower), ``https://`` over
httpx's HTTP/2-capable transport with one small pool per origin (``http2=false`` sends HTTPS
through the aiohttp transport too). Both resolve through one guarded resolver (c-ares,
cached). zstd and blake2b of bodies >= 16 KiB run on two worker threads (they release the GIL).

Modules: ``fetch`` (the Fetcher), ``exchange`` (one GET, as received), ``raw`` (RawPage
assembly), ``client``/``transport`` (transports), ``resolver``/``dns`` (overrides, DNS,
cache, SSRF guard), ``robots``, ``politeness`` (per host and IP), ``load`` (event-loop
lag and the adaptive limit), ``breaker``, ``requeue`` (delays), ``body``/``charset``/
``sniff`` (what the body is), ``failures`` (exceptions to reasons).
"""

from __future__ import annotations

from workers.ingestor.fetch import Fetcher

__all__ = ["Fetcher"]
