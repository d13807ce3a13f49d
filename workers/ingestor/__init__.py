"""The ingestor's fetch layer: one ``CrawlRequest`` in, one ``RawPage`` or a reasoned error out.

The Kafka loop (consume ``crawl.request``, produce ``raw.page`` / ``raw.page.dlq``) lives
in the daemon; it calls this API::

    fetcher = Fetcher(settings.ingestor, max_page_bytes=settings.worker.max_page_bytes)
    async with fetcher:
        page: RawPage = await fetcher.fetch(request)   # request: CrawlRequest

``fetch`` may be called from many tasks at once. It waits its turn (global ``concurrency``,
``per_host_concurrency``, ``per_host_delay_s`` or the site's Crawl-delay up to
``crawl_delay_cap_s``), so the caller should bound how many fetches it has outstanding
(for example a few times ``concurrency``) rather than start one task per record.

Returns a :class:`~workers.messages.RawPage`:

- ``status`` 2xx, ``final_url`` after at most ``max_redirects`` redirects, ``redirects`` the
  URLs that redirected (in order), ``http_version`` (``HTTP/1.1``, ``HTTP/2``);
- ``html_zstd`` the body compressed by ``compress_html``; bodies above ``max_page_bytes``
  are cut there while streaming (the rest is never downloaded), ``truncated=True``,
  ``body_bytes`` the size announced or received; ``content_hash`` blake2b-128 hex of the
  body kept (for a truncated page: of the kept prefix, since the rest was never read);
- ``charset`` from BOM, Content-Type, ``<meta>``, else UTF-8 validity, else windows-1252;
- ``headers``: content-type, content-length, content-encoding, content-language,
  last-modified, etag, cache-control, expires, date, link, server, x-robots-tag;
- ``timings`` in ms: ``wait`` (politeness queue), ``ttfb`` and ``download`` of the final
  hop, ``total`` network time of all hops;
- a non-HTML Content-Type (or a missing/generic one whose body does not sniff as HTML)
  gives ``skipped="non-html content-type: <type>"`` and an empty ``html_zstd``: record it,
  do not dead-letter it.

Raises (from :mod:`workers.errors`; messages are written for the dead-letter topic):

- ``TransientFetchError``: timeouts, connection failures, 408/429/5xx, robots.txt
  unreachable, still failing after ``max_retries`` in-process retries (exponential
  backoff with full jitter, or the server's Retry-After up to ``retry_after_cap_s``;
  a longer Retry-After is raised at once with ``retry_after`` set);
- ``PermanentFetchError`` (``status`` set for HTTP errors): 4xx including 404, DNS failure,
  TLS failure, too many redirects, invalid URL or redirect target;
- ``BlockedError``: robots.txt disallow, SSRF guard refusal, open circuit breaker.

How it fetches: httpx requests and responses throughout; ``http://`` over a small
httpx transport on one aiohttp session (httpx's own pool is far slower), ``https://`` over
httpx's HTTP/2-capable transport with one small pool per origin (``http2=false`` sends HTTPS
through the aiohttp transport too). Both resolve through one guarded resolver. zstd and
blake2b of bodies >= 16 KiB run on two worker threads (they release the GIL).

Modules: ``fetch`` (the Fetcher), ``client``/``transport`` (transports), ``resolver``
(overrides, DNS cache, SSRF guard), ``robots``, ``politeness``, ``breaker``,
``body``/``charset`` (what the body is), ``failures`` (exceptions to reasons).
"""

from __future__ import annotations

from workers.ingestor.fetch import Fetcher

__all__ = ["Fetcher"]
