"""Where each page's content ends up: its WARC records packed into append-only objects.

:func:`pack` lays the pages of a sub-batch, in order, into objects of at most
``StorageSettings.warc_object_bytes`` (a page bigger than that gets an object of its own).
Every object opens with a ``warcinfo`` record and is a valid ``.warc.gz`` file on its own;
each page's records are contiguous, so the row's ``warc_offset``/``warc_length`` fetch the
page's whole run and ``html_*``/``markdown_*``/``text_*``/``rendered_*`` one record each, with
one ranged GET. Keys are never reused (:func:`~workers.storage.objects.warc_object_key`).

Rows of the first build point at whole objects (``pages/…``, offset NULL) or at zstd frames in
``segments/…``; :class:`Part` describes both, and ``ObjectRefs.warc`` is None for them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

from workers.storage.objects import WARC_TYPE, Blob, warc_object_key
from workers.storage.warc import PageRecords, warcinfo_record

__all__ = ["PARTS", "ObjectRefs", "Part", "WarcRun", "pack"]

PARTS = ("html", "markdown", "rendered", "text")
"""Content parts with their own (key, digest, offset, length) columns."""


@dataclass(frozen=True, slots=True)
class Part:
    """Where one content part of a page is stored."""

    key: str
    digest: str
    """``sha1:<base32>`` of the payload (WARC rows) or blake2b-128 hex of the bytes (first build)."""
    offset: int | None = None
    """Byte offset inside the object; None when the part is the whole object (first build)."""
    length: int | None = None


@dataclass(frozen=True, slots=True)
class WarcRun:
    """The page's whole run of WARC records (request … last conversion)."""

    key: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class ObjectRefs:
    """The content parts of one page (None = no such part)."""

    html: Part | None = None
    markdown: Part | None = None
    rendered: Part | None = None
    text: Part | None = None
    warc: WarcRun | None = None

    def key(self, name: str) -> str | None:
        part: Part | None = getattr(self, name)
        return None if part is None else part.key

    @property
    def is_warc(self) -> bool:
        return self.warc is not None

    def keys(self) -> set[str]:
        out = {p.key for p in (self.html, self.markdown, self.rendered, self.text) if p is not None}
        if self.warc is not None:
            out.add(self.warc.key)
        return out


def _groups(pages: Sequence[PageRecords], max_bytes: int) -> list[list[int]]:
    groups: list[list[int]] = []
    size = 0
    for i, page in enumerate(pages):
        n = page.size
        if not groups or size + n > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(i)
        size += n
    return groups


def pack(
    pages: Sequence[PageRecords], *, max_bytes: int, now: float, version: str = ""
) -> tuple[list[Blob], list[ObjectRefs]]:
    """The objects to PUT and, per page (in order), where its records are."""
    refs: list[ObjectRefs | None] = [None] * len(pages)
    blobs: list[Blob] = []
    for group in _groups(pages, max_bytes):
        key = warc_object_key(now)
        chunks = [warcinfo_record(now=now, filename=os.path.basename(key), software_version=version)]
        offset = len(chunks[0])
        for i in group:
            start = offset
            parts: dict[str, Part] = {}
            for record in pages[i].records:
                if record.part is not None:
                    parts[record.part] = Part(key, record.digest, offset, len(record.data))
                chunks.append(record.data)
                offset += len(record.data)
            refs[i] = ObjectRefs(**parts, warc=WarcRun(key, start, offset - start))
        blobs.append(Blob(key, b"".join(chunks), WARC_TYPE))
    return blobs, [r if r is not None else ObjectRefs() for r in refs]
