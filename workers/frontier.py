"""Turning list entries into ``crawl.request`` records and publishing them.

Used by the CLI (``streamcrawl crawl``) and by Dagster's ``crawl_frontier`` asset, so a
URL is normalised, hashed and keyed by host in exactly one way. Lists are parsed by
:mod:`workers.lists` (re-exported here: ``ListEntry``, ``ParsedList``, ``parse_list_lines``,
``read_list_file``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator

from workers.kafka import make_producer
from workers.lists import ListEntry, ParsedList, parse_list_lines, read_list_file
from workers.messages import CrawlRequest, encode, make_headers, new_trace_id
from workers.settings import KafkaSettings
from workers.topics import CRAWL_REQUEST
from workers.urls import host_of, normalize_url, url_hash

__all__ = [
    "ListEntry",
    "ParsedList",
    "build_request",
    "parse_list_lines",
    "publish_requests",
    "read_list_file",
]


def build_request(
    url: str, *, batch: str | None, rank: int | None = None, recrawl: bool = False
) -> CrawlRequest:
    normalized = normalize_url(url)
    return CrawlRequest(
        url=normalized,
        url_hash=url_hash(normalized),
        host=host_of(normalized),
        requested_at=time.time(),
        batch=batch,
        rank=rank,
        recrawl=recrawl,
    )


def _chunks(items: Iterable[CrawlRequest], size: int) -> Iterator[list[CrawlRequest]]:
    chunk: list[CrawlRequest] = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


async def publish_requests(settings: KafkaSettings, requests: Iterable[CrawlRequest]) -> int:
    """Publish to ``crawl.request`` keyed by host; returns once every record is acknowledged."""
    producer = make_producer(settings, client_id="streamcrawl-frontier")
    sent = 0
    try:
        await producer.start()  # inside the try: a failed start must still close the client
        for chunk in _chunks(requests, 1000):
            futures = [
                await producer.send(
                    CRAWL_REQUEST.name,
                    encode(req),
                    key=req.host.encode(),
                    headers=make_headers(new_trace_id()),
                )
                for req in chunk
            ]
            for future in futures:
                await future
            sent += len(chunk)
    finally:
        await producer.stop()
    return sent
