"""Reading robots.txt ``Sitemap:`` lines and sitemap files, streaming and capped.

Sitemaps (sitemaps.org protocol) come as an XML ``<urlset>`` of page URLs, an XML
``<sitemapindex>`` of further sitemaps, or a plain-text list of URLs, each optionally gzipped.
The body is decompressed incrementally and never past ``max_bytes`` (the protocol's 50 MB);
XML is parsed with lxml's ``iterparse`` (entities never resolved, no network: no XXE), reading
at most ``max_urls`` locations (the protocol's 50,000). A file that exceeds a cap is read up to
it and flagged ``truncated``; one that is neither XML nor text raises ``SitemapError``.

robots.txt is parsed by protego (the parser the ingestor uses for its rules).
"""

from __future__ import annotations

import io
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

from lxml import etree
from protego import Protego

__all__ = ["SitemapError", "SitemapFile", "parse_sitemap", "robots_sitemaps"]

_GZIP_MAGIC = b"\x1f\x8b"


class SitemapError(ValueError):
    """The body is not a sitemap this reader understands."""


@dataclass(slots=True)
class SitemapFile:
    pages: list[str] = field(default_factory=list)
    """Page URLs of a ``<urlset>`` or a text sitemap, as written (not canonicalised)."""
    sitemaps: list[str] = field(default_factory=list)
    """Child sitemaps of a ``<sitemapindex>``."""
    truncated: bool = False


def robots_sitemaps(body: bytes) -> list[str]:
    """The ``Sitemap:`` URLs of a robots.txt body, in order, deduplicated."""
    text = body.decode("utf-8", "replace")
    return list(dict.fromkeys(Protego.parse(text).sitemaps))


def _inflate(body: bytes, max_bytes: int) -> tuple[bytes, bool]:
    """Gunzip ``body`` (if gzipped) to at most ``max_bytes``: (data, truncated)."""
    if not body.startswith(_GZIP_MAGIC):
        return body[:max_bytes], len(body) > max_bytes
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = bytearray()
    pending: bytes = body
    try:
        while pending and len(out) <= max_bytes and not inflater.eof:
            out += inflater.decompress(pending, max_bytes + 1 - len(out))
            pending = inflater.unconsumed_tail
    except zlib.error as exc:
        if not out:
            raise SitemapError(f"invalid gzip data: {exc}") from exc
    return bytes(out[:max_bytes]), len(out) > max_bytes


def _local(tag: object) -> str:
    name = tag if isinstance(tag, str) else ""
    return name.rsplit("}", 1)[-1].lower()


def _xml_locations(data: bytes) -> Iterator[tuple[str, str]]:
    """(parent element name, text) of every ``<loc>``, streaming."""
    parser = etree.iterparse(
        io.BytesIO(data),
        events=("end",),
        resolve_entities=False,
        no_network=True,
        huge_tree=False,
        recover=True,
    )
    try:
        for _event, element in parser:
            if _local(element.tag) == "loc":
                parent = element.getparent()
                text = (element.text or "").strip()
                if text:
                    yield (_local(parent.tag) if parent is not None else "", text)
            elif _local(element.tag) in ("url", "sitemap"):
                element.clear()  # keep memory flat on a 50,000-URL file
    except etree.XMLSyntaxError as exc:
        raise SitemapError(f"malformed sitemap XML: {exc}") from exc


def parse_sitemap(body: bytes, *, max_bytes: int, max_urls: int) -> SitemapFile:
    """Read one sitemap file (see the module doc)."""
    data, truncated = _inflate(body, max_bytes)
    out = SitemapFile(truncated=truncated)
    head = data[:512].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith(b"<"):
        for parent, loc in _xml_locations(data):
            if len(out.pages) + len(out.sitemaps) >= max_urls:
                out.truncated = True
                break
            (out.sitemaps if parent == "sitemap" else out.pages).append(loc)
        return out
    if b"\x00" in head:
        raise SitemapError("binary data, not a sitemap")
    for line in data.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if len(out.pages) >= max_urls:
            out.truncated = True
            break
        out.pages.append(line)
    return out
