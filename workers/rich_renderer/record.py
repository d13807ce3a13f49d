"""The rich renderer's output record: a ProcessedPage from the rendered DOM, within every size cap.

:func:`rendered_page` extracts the rendered DOM like the fast path does and cuts the
Markdown at ``max_markdown_bytes``; the renderer already cut the DOM at
``max_rendered_bytes``. Every cut is flagged: ``truncated=True`` and ``truncated_parts``
names the part (``raw`` when the ingestor cut the body, ``rendered``, ``markdown``).

:func:`encode_fitting` guarantees the record can be produced: if the encoded record is
still above the topic's message limit (a raw body near its own cap plus a large DOM),
it drops the rendered DOM, then cuts the Markdown, then the outlinks, flagging each; a
record that cannot fit even then is an :class:`~workers.errors.ExtractionError`
(permanent: dead-lettered with the sizes), never a produce that fails forever.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

from workers.errors import ExtractionError
from workers.extract import extract
from workers.messages import ProcessedPage, RoutedPage, compress_html, encode
from workers.rich import Rendered
from workers.rich.caps import truncate_utf8
from workers.topics import MAX_MESSAGE_BYTES

__all__ = ["MIN_ARTICLE_WORDS", "RECORD_LIMIT", "encode_fitting", "rendered_page"]

MIN_ARTICLE_WORDS = 100
"""Rendered pages whose main content has fewer words keep the whole body's Markdown."""
RECORD_LIMIT = MAX_MESSAGE_BYTES - 64 * 1024
"""Largest encoded ProcessedPage we produce: the topic limit less room for Kafka's record
framing and headers."""


def _with_part(parts: list[str], part: str) -> list[str]:
    return parts if part in parts else [*parts, part]


def _shorter(text: str, over: int) -> str:
    """``text`` less ``over`` bytes (and a little room for msgpack's length prefix)."""
    size = len(text.encode("utf-8", "replace"))
    return truncate_utf8(text, max(0, size - over - 1024))[0]


def rendered_page(routed: RoutedPage, rendered: Rendered, *, max_markdown_bytes: int) -> ProcessedPage:
    """A ProcessedPage from the rendered DOM, extracted like the fast path does, Markdown capped."""
    page = routed.page
    html = rendered.html.encode("utf-8", "replace")
    ex = extract(html, url=page.url, final_url=page.final_url, charset="utf-8")
    markdown, words = ex.markdown, ex.word_count
    if words < MIN_ARTICLE_WORDS:
        # An app, not an article: main-content extraction would keep too little of it,
        # so keep the Markdown of the whole rendered body (form placeholders included).
        markdown, words = rendered.markdown, len(rendered.markdown.split())
    parts: list[str] = ["raw"] if page.truncated else []
    if rendered.truncated:
        parts.append("rendered")
    markdown, cut = truncate_utf8(markdown, max_markdown_bytes)
    if cut:
        parts.append("markdown")
    outlinks = list(ex.outlinks) or list(rendered.links)
    return ProcessedPage(
        url=page.url,
        url_hash=page.url_hash,
        host=page.host,
        final_url=page.final_url,
        status=page.status,
        route="rich",
        score=routed.score,
        rules=list(routed.rules),
        fetched_at=page.fetched_at,
        processed_at=time.time(),
        content_hash=page.content_hash,
        html_zstd=page.html_zstd,
        rendered_html_zstd=compress_html(html),
        markdown=markdown,
        title=ex.title or rendered.title,
        description=ex.description or rendered.description,
        lang=ex.lang or rendered.lang,
        canonical_url=ex.canonical_url,
        published_time=ex.published_time,
        outlinks=outlinks,
        outlinks_total=len(outlinks),
        word_count=words,
        text_hash=ex.text_hash,
        simhash=ex.simhash,
        truncated=bool(parts),
        truncated_parts=parts,
        batch=page.batch,
        rank=page.rank,
        ctx=page.ctx,
        request_id=page.request_id,
        content_type=page.content_type,
        charset=page.charset,
        body_bytes=page.body_bytes,
        http_version=page.http_version,
        status_reason=page.status_reason,
        response_headers=page.response_headers,
        request_headers=page.request_headers,
        peer_ip=page.peer_ip,
        redirects=list(page.redirects),
    )


def _drop_rendered(page: ProcessedPage, over: int) -> ProcessedPage | None:
    return dataclasses.replace(page, rendered_html_zstd=None) if page.rendered_html_zstd else None


def _cut_markdown(page: ProcessedPage, over: int) -> ProcessedPage | None:
    return dataclasses.replace(page, markdown=_shorter(page.markdown, over)) if page.markdown else None


def _cut_text(page: ProcessedPage, over: int) -> ProcessedPage | None:
    return dataclasses.replace(page, text=_shorter(page.text, over)) if page.text else None


def _halve_outlinks(page: ProcessedPage, over: int) -> ProcessedPage | None:
    if not page.outlinks:
        return None
    kept = page.outlinks[: len(page.outlinks) // 2]
    known = set(kept)
    return dataclasses.replace(
        page, outlinks=kept, outlinks_nofollow=[u for u in page.outlinks_nofollow if u in known]
    )


_SHRINK: tuple[tuple[str, Callable[[ProcessedPage, int], ProcessedPage | None], bool], ...] = (
    ("rendered", _drop_rendered, False),
    ("markdown", _cut_markdown, False),
    ("text", _cut_text, False),
    ("outlinks", _halve_outlinks, True),
)
"""In order: (the part flagged, how to make the record smaller, whether to repeat)."""


def encode_fitting(processed: ProcessedPage, *, limit: int = RECORD_LIMIT) -> tuple[bytes, ProcessedPage]:
    """The encoded record, shrunk to at most ``limit`` bytes if needed (see module docstring)."""
    data = encode(processed)
    for part, shrink, repeat in _SHRINK:
        while len(data) > limit:
            smaller = shrink(processed, len(data) - limit)
            if smaller is None:
                break
            parts = _with_part(processed.truncated_parts, part)
            processed = dataclasses.replace(smaller, truncated=True, truncated_parts=parts)
            data = encode(processed)
            if not repeat:
                break
    if len(data) > limit:
        raise ExtractionError(
            f"the processed record of {processed.url} is {len(data)} bytes without its rendered DOM, "
            f"Markdown and outlinks, above the {limit}-byte record limit"
        )
    return data, processed
