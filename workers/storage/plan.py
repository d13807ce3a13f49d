"""Which objects a batch must write, and where each page's content ends up.

Two layouts (``StorageSettings.object_layout``):

``page`` (default)
    One object per content part, at a key derived from the url_hash (see
    :func:`~workers.storage.objects.page_keys`): 2 PUTs per new page (3 with a rendered DOM).
``segment``
    All parts written by one batch go into one object, ``segments/<hh>/<digest>.seg`` named by
    the blake2b-128 of its bytes (at most SEGMENT_MAX_BYTES each, PUT in parallel); each part is a byte range (``*_offset``/``*_length`` in the
    row) that is readable on its own with a ranged GET: HTML parts are complete zstd frames,
    Markdown parts UTF-8. ~1 PUT per 4 MB instead of 2 per page, for a request-rate-bound
    object store.

In both layouts a part whose digest equals the stored one is not written again (a
redelivery or an unchanged recrawl costs no request), and an identical batch rewritten
after a crash maps to the same segment key.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from workers.messages import ProcessedPage
from workers.storage.objects import HTML_TYPE, MARKDOWN_TYPE, Blob, digest, page_keys, segment_key

__all__ = [
    "PARTS",
    "SEGMENT_MAX_BYTES",
    "SEGMENT_TYPE",
    "Layout",
    "ObjectRefs",
    "Part",
    "WritePlan",
    "plan_writes",
]

Layout = Literal["page", "segment"]
PARTS = ("html", "markdown", "rendered")
SEGMENT_TYPE = "application/octet-stream"
# Segments stay below the S3 client's multipart threshold (5 MiB) and SeaweedFS's chunk size
# (4 MiB): a 6 MB segment took ~4x longer per byte than a 4 MB one (multipart + chunking).
SEGMENT_MAX_BYTES = 4_000_000


@dataclass(frozen=True, slots=True)
class Part:
    """Where one content part of a page is stored."""

    key: str
    digest: str
    """blake2b-128 hex of the part's bytes."""
    offset: int | None = None
    """Byte offset inside a segment object; None when the part is the whole object."""
    length: int | None = None


@dataclass(frozen=True, slots=True)
class ObjectRefs:
    """The content parts of one page (None = no such part)."""

    html: Part | None = None
    markdown: Part | None = None
    rendered: Part | None = None

    def key(self, name: str) -> str | None:
        part: Part | None = getattr(self, name)
        return None if part is None else part.key


def _bodies(page: ProcessedPage) -> dict[str, tuple[bytes, str]]:
    if page.skipped:
        return {}
    bodies = {
        "html": (page.html_zstd, HTML_TYPE),
        "markdown": (page.markdown.encode("utf-8", "replace"), MARKDOWN_TYPE),
        "rendered": (page.rendered_html_zstd or b"", HTML_TYPE),
    }
    return {name: body for name, body in bodies.items() if body[0]}


@dataclass(frozen=True, slots=True)
class WritePlan:
    refs: list[ObjectRefs]
    """One per page, in order."""
    blobs: list[Blob]
    """Objects to PUT before the rows are written."""
    stale: list[str]
    """Whole objects no longer referenced once the rows are written (page layout)."""


_Pending = tuple[int, str, bytes, str]  # (page index, part name, bytes, digest)


def _pack(pending: list[_Pending], *, max_bytes: int) -> list[list[_Pending]]:
    """Split parts, in order, into segments of at most ``max_bytes`` (a bigger part goes alone)."""
    groups: list[list[_Pending]] = []
    size = 0
    for item in pending:
        n = len(item[2])
        if not groups or size + n > max_bytes:
            groups.append([])
            size = 0
        groups[-1].append(item)
        size += n
    return groups


def plan_writes(
    pages: Sequence[ProcessedPage],
    prior: Sequence[ObjectRefs | None],
    *,
    layout: Layout,
    segment_max_bytes: int = SEGMENT_MAX_BYTES,
) -> WritePlan:
    """The refs each page will have, the objects to PUT first (none when nothing changed) and
    the whole objects its previous version had that the new one no longer has."""
    refs: list[dict[str, Part]] = []
    blobs: list[Blob] = []
    stale: list[str] = []
    pending: list[_Pending] = []  # segment layout: parts still to pack
    for i, (page, old) in enumerate(zip(pages, prior, strict=True)):
        parts: dict[str, Part] = {}
        keys = page_keys(page.url_hash)
        for name, (data, content_type) in _bodies(page).items():
            d = digest(data)
            before: Part | None = getattr(old, name) if old is not None else None
            if before is not None and before.digest == d:
                parts[name] = before  # unchanged bytes: keep pointing at the stored copy
            elif layout == "page":
                key = getattr(keys, name)
                blobs.append(Blob(key, data, content_type))
                parts[name] = Part(key, d)
            else:
                pending.append((i, name, data, d))
        for name in PARTS:
            gone: Part | None = getattr(old, name) if old is not None else None
            if gone is not None and gone.offset is None and name not in parts:
                stale.append(gone.key)  # e.g. a recrawl that is now skipped: drop its old object
        refs.append(parts)
    for group in _pack(pending, max_bytes=segment_max_bytes):
        body = b"".join(data for _, _, data, _ in group)
        key = segment_key(digest(body))
        offset = 0
        for i, name, data, d in group:
            refs[i][name] = Part(key, d, offset, len(data))
            offset += len(data)
        blobs.append(Blob(key, body, SEGMENT_TYPE))
    return WritePlan([ObjectRefs(**parts) for parts in refs], blobs, stale)
