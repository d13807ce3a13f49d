"""The guard's shared cache of sub-resources: a site's pages share their scripts and styles.

Chromium's own HTTP cache is off while every request is intercepted, so without this a
crawl of a JavaScript site would download the same bundles for every page: slower for
us and heavier for the site than a browser. What is kept:

- responses to GET with status 200 whose ``Cache-Control`` allows storing
  (not ``no-store``, ``no-cache``, ``private`` or ``max-age=0``) and that do not
  ``Vary`` on anything but ``Accept-Encoding`` (our requests differ in nothing else);
- for ``max-age`` (``s-maxage`` first) seconds, at most ``ttl_s``; without an explicit
  lifetime, ``ttl_s``: a render is a snapshot, not a session that must see updates;
- at most ``max_bytes`` in all (least recently used first out), no entry above a
  quarter of it.

No revalidation: an entry is used while fresh, then dropped. Hand-written rather than
hishel because what is needed is a byte-bounded in-memory LRU with the three rules
above, not RFC 9111's validation machinery or its storages.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from workers.rich.guard import Fetched

__all__ = ["ResourceCache"]

_MAX_AGE = re.compile(r"(?:^|,)\s*(s-maxage|max-age)\s*=\s*\"?(\d+)", re.IGNORECASE)
_NOT_STORED = re.compile(r"(?:^|,)\s*(no-store|no-cache|private)\b", re.IGNORECASE)


def _lifetime(headers: dict[str, str], ttl_s: float) -> float:
    """Seconds ``headers`` let us reuse a response (0: not at all)."""
    control = headers.get("cache-control", "")
    if _NOT_STORED.search(control):
        return 0.0
    vary = {v.strip().lower() for v in headers.get("vary", "").split(",") if v.strip()}
    if vary - {"accept-encoding"}:
        return 0.0
    ages = dict((name.lower(), int(value)) for name, value in _MAX_AGE.findall(control))
    age = ages.get("s-maxage", ages.get("max-age"))
    return ttl_s if age is None else min(float(age), ttl_s)


class ResourceCache:
    """URL -> Fetched, bounded by bytes (see the module docstring)."""

    def __init__(self, *, max_bytes: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_bytes = max_bytes
        self.ttl_s = ttl_s
        self.size = 0
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, Fetched]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, url: str) -> Fetched | None:
        entry = self._entries.get(url)
        if entry is None:
            return None
        if entry[0] <= self._clock():
            self._drop(url)
            return None
        self._entries.move_to_end(url)
        return entry[1]

    def put(self, url: str, method: str, response: Fetched) -> None:
        if method != "GET" or response.status != 200 or not 0 < len(response.body) * 4 <= self.max_bytes:
            return
        lifetime = _lifetime(response.headers, self.ttl_s)
        if lifetime <= 0:
            return
        if url in self._entries:
            self._drop(url)
        self._entries[url] = (self._clock() + lifetime, response)
        self.size += len(response.body)
        while self.size > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, url: str) -> None:
        _, response = self._entries.pop(url)
        self.size -= len(response.body)
