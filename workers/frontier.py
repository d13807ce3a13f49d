"""Turning lists into ``crawl.request`` records: Tranco CSVs, URL lists, publishing.

Used by the CLI (``streamcrawl crawl``) and by Dagster's ``crawl_frontier`` asset, so a
URL is normalised, hashed and keyed by host in exactly one way.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from workers.errors import ConfigError
from workers.kafka import make_producer
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


@dataclass(frozen=True, slots=True)
class ListEntry:
    url: str
    rank: int | None


@dataclass(slots=True)
class ParsedList:
    entries: list[ListEntry] = field(default_factory=list)
    rejected: list[tuple[int, str, str]] = field(default_factory=list)
    """(line number, line, reason) of every line that was dropped."""


def parse_list_lines(lines: Iterable[str], *, scheme: str = "https") -> ParsedList:
    """Parse a Tranco ``rank,domain`` CSV or a plain URL/domain list (one per line).

    Blank lines and ``#`` comments are ignored; invalid lines are collected with a reason,
    and duplicates (after normalisation) keep their first occurrence.
    """
    out = ParsedList()
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        rank: int | None = None
        target = line
        if "," in line:
            first, _, rest = line.partition(",")
            if first.strip().isdigit():
                rank, target = int(first), rest.strip()
            else:
                out.rejected.append((number, line, "expected `rank,domain`"))
                continue
        if "://" not in target:
            target = f"{scheme}://{target}"
        try:
            url = normalize_url(target)
        except ConfigError as exc:
            out.rejected.append((number, line, str(exc)))
            continue
        if url in seen:
            continue
        seen.add(url)
        out.entries.append(ListEntry(url=url, rank=rank))
    return out


def read_list_file(path: Path, *, scheme: str = "https") -> ParsedList:
    if not path.is_file():
        raise ConfigError(f"list file not found: {path} (pass a Tranco CSV, a URL list, or URLs)")
    with path.open(encoding="utf-8", errors="replace") as handle:
        return parse_list_lines(handle, scheme=scheme)


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
