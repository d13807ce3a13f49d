"""The rich renderer daemon.

Renders each page in Chromium, then runs the same extractor as the fast path over the
rendered DOM, so a ProcessedPage looks the same whichever path made it (``route=rich``)
and storage needs no special case. The rendered HTML travels zstd-compressed next to
the raw HTML. When rendering fails or times out, the raw HTML is extracted instead if it
has usable text (``fallback=True``); otherwise the page is dead-lettered with the reason.
"""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from workers.errors import ExtractionError, PermanentError, RetryableError
from workers.extract import extract
from workers.extract.language import Detected, detect_language
from workers.extract.robots import product_token
from workers.extract.simhash import simhash
from workers.extract.text import normalise, text_hash, tokens
from workers.fast_extractor.daemon import PAGES_PROCESSED, PROCESS_SECONDS
from workers.fast_extractor.processing import process_routed
from workers.lifecycle import Incoming, Worker
from workers.messages import ProcessedPage, RoutedPage, compress_html
from workers.processed import processed_base, with_extraction, x_robots_tags
from workers.rich import Rendered, Renderer
from workers.rich.content import page_content
from workers.settings import ExtractorSettings, Settings
from workers.topics import PROCESSED_FINAL, Stage

__all__ = ["MIN_ARTICLE_WORDS", "MIN_FALLBACK_WORDS", "RichRenderer", "rendered_page"]

FALLBACKS = Counter("renderer_fallbacks_total", "Pages extracted from raw HTML after a failed render")
MIN_FALLBACK_WORDS = 50
"""A raw page with fewer words than this is not 'usable text' for the fallback."""
MIN_ARTICLE_WORDS = 100
"""Rendered pages whose main content has fewer words keep the whole body's Markdown."""


class RichRenderer(Worker):
    stage = Stage.RICH_RENDERER
    batch_size = 1

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.max_in_flight = settings.renderer.concurrency * 2
        self.renderer = Renderer(
            settings.renderer,
            data_dir=settings.stack.data_dir / "rich",
            host_resolver_rules=dict(settings.ingestor.resolve_overrides),
        )

    async def on_start(self) -> None:
        await self.renderer.__aenter__()

    async def on_stop(self) -> None:
        await self.renderer.__aexit__(None, None, None)

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            routed = await self.decode_or_dead_letter(item, RoutedPage)
            if routed is None:
                continue
            with PROCESS_SECONDS.labels("rich").time():
                processed = await self.render(routed)
            PAGES_PROCESSED.labels("rich").inc()
            await self.emit(PROCESSED_FINAL, processed, key=processed.host.encode(), source=item)

    async def render(self, routed: RoutedPage) -> ProcessedPage:
        page = routed.page
        try:
            rendered = await self.renderer.render(page.final_url)
        except (RetryableError, PermanentError) as exc:
            return self.fallback(routed, exc)
        return rendered_page(
            routed, rendered, settings=self.settings.extractor, user_agent=self.settings.ingestor.user_agent
        )

    def fallback(self, routed: RoutedPage, exc: Exception) -> ProcessedPage:
        reason = f"render failed: {type(exc).__name__}: {exc}"
        try:
            processed = process_routed(
                routed,
                route="rich",
                fallback=True,
                settings=self.settings.extractor,
                user_agent=self.settings.ingestor.user_agent,
            )
        except ExtractionError as exc2:
            raise ExtractionError(f"{reason}; raw HTML unreadable: {exc2}") from exc
        if processed.word_count < MIN_FALLBACK_WORDS:
            raise ExtractionError(
                f"{reason}; raw HTML has no usable text ({processed.word_count} words)"
            ) from exc
        FALLBACKS.inc()
        return processed


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
    html = rendered.html.encode("utf-8")
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
        body = page_content(rendered.html, url=page.final_url)
        markdown, text = body.markdown, body.text
        norm = normalise(text)
        tokens_ = tokens(norm)
        words, hashed, sim, language = len(tokens_), text_hash(norm), simhash(tokens_), detect_language(text)
        quality.update(method="rendered-body", text_chars=len(text), language_reliable=language.reliable)
    return with_extraction(
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
