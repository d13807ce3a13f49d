"""The rich renderer's output record: a ProcessedPage from the rendered DOM, within every size cap.

:func:`rendered_page` extracts the rendered DOM like the fast path does, with the same
extractor settings (its Markdown and text caps included); the renderer already cut the DOM
at ``max_rendered_bytes``. Every cut is flagged: ``truncated=True`` and ``truncated_parts``
names the part (``raw`` when the ingestor cut the body, ``rendered``, ``markdown``, ``text``).

:func:`encode_fitting` guarantees the record can be produced: if the encoded record is
still above the topic's message limit (a raw body near its own cap plus a large DOM),
it drops the rendered DOM, then cuts the Markdown and the text (in proportion), then the
outlinks, flagging each; a
record that cannot fit even then is an :class:`~workers.errors.ExtractionError`
(permanent: dead-lettered with the sizes), never a produce that fails forever.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

from workers.errors import ExtractionError
from workers.extract import extract
from workers.extract.language import Detected, detect_language
from workers.extract.robots import product_token
from workers.extract.simhash import simhash
from workers.extract.text import normalise, text_hash, tokens
from workers.messages import ProcessedPage, RoutedPage, compress_html, encode
from workers.processed import cap_utf8, processed_base, with_extraction, x_robots_tags
from workers.rich import Rendered
from workers.rich.content import page_content
from workers.settings import ExtractorSettings
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
    return cap_utf8(text, max(0, size - over - 1024))[0]


def rendered_page(
    routed: RoutedPage,
    rendered: Rendered,
    *,
    settings: ExtractorSettings | None = None,
    user_agent: str = "StreamCrawl",
) -> ProcessedPage:
    """A ProcessedPage from the rendered DOM, extracted like the fast path does (same bounds,
    caps, language, robots and quality signals); the base fields come from the routed page."""
    limits = settings or ExtractorSettings.model_construct()
    page = routed.page
    html = rendered.html.encode("utf-8", "replace")
    ex = extract(
        html,
        url=page.url,
        final_url=page.final_url,
        charset="utf-8",
        x_robots_tags=x_robots_tags(routed),
        robots_token=product_token(user_agent),
        max_outlinks=limits.max_outlinks,
        max_nodes=limits.max_nodes,
        max_depth=limits.max_depth,
    )
    markdown, text, words = ex.markdown, ex.text, ex.word_count
    hashed, sim, language = ex.text_hash, ex.simhash, Detected(ex.language, ex.language_score)
    quality = dict(ex.quality)
    if words < MIN_ARTICLE_WORDS:
        # An app, not an article: main-content extraction would keep too little of it,
        # so keep the whole rendered body (form placeholders included).
        if rendered.text is not None and rendered.final_url == page.final_url:
            markdown, text = rendered.markdown, rendered.text  # the renderer parsed this DOM already
        else:
            body = page_content(rendered.html, url=page.final_url)
            markdown, text = body.markdown, body.text
        norm = normalise(text)
        tokens_ = tokens(norm)
        words, hashed, sim, language = len(tokens_), text_hash(norm), simhash(tokens_), detect_language(text)
        quality.update(method="rendered-body", text_chars=len(text), language_reliable=language.reliable)
    processed = with_extraction(
        processed_base(routed, route="rich"),
        ex,
        limits,
        markdown=markdown,
        text=text,
        rendered_html_zstd=compress_html(html),
        title=ex.title or rendered.title,
        description=ex.description or rendered.description,
        lang=ex.lang or rendered.lang,
        outlinks=list(ex.outlinks) or list(rendered.links),
        outlinks_total=max(ex.outlinks_total, len(rendered.links)),
        word_count=words,
        text_hash=hashed,
        simhash=sim,
        language=language.language,
        language_score=language.score,
        quality=quality,
    )
    if rendered.truncated:  # the renderer cut the DOM at max_rendered_bytes
        parts = _with_part(processed.truncated_parts, "rendered")
        processed = dataclasses.replace(processed, truncated=True, truncated_parts=parts)
    return processed


def _drop_rendered(page: ProcessedPage, over: int) -> ProcessedPage | None:
    return dataclasses.replace(page, rendered_html_zstd=None) if page.rendered_html_zstd else None


def _cut_content(page: ProcessedPage, over: int) -> ProcessedPage | None:
    """Markdown and plain text cut by ``over`` bytes between them, each in proportion to its size."""
    md, text = len(page.markdown.encode("utf-8", "replace")), len(page.text.encode("utf-8", "replace"))
    if not md and not text:
        return None
    share = over / (md + text)
    return dataclasses.replace(
        page,
        markdown=_shorter(page.markdown, int(md * share)) if md else page.markdown,
        text=_shorter(page.text, int(text * share)) if text else page.text,
    )


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
    ("markdown", _cut_content, False),
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
            if part == "markdown" and smaller.text != processed.text:
                parts = _with_part(parts, "text")
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
