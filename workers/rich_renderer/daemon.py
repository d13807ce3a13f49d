"""The rich renderer daemon.

Renders each page in Chromium from the RawPage the ingestor fetched (the document is
never fetched again; every other request goes through the guard, see workers/rich),
then runs the same extractor as the fast path over the rendered DOM, so a ProcessedPage
looks the same whichever path made it (``route=rich``) and storage needs no special
case. The rendered HTML travels zstd-compressed next to the raw HTML, both within their
size caps (record.py); no record above the topic's message limit is ever produced. When
rendering fails or times out, the raw HTML is extracted instead if it has usable text
(``fallback=True``); otherwise the page is dead-lettered with the reason. A page with
nothing to render (skipped, no body, a 304) passes through like the fast path.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from prometheus_client import Counter

from workers.errors import ExtractionError, PermanentError, RetryableError
from workers.fast_extractor.daemon import PAGES_PROCESSED, PROCESS_SECONDS
from workers.fast_extractor.processing import process_routed
from workers.lifecycle import Incoming, Worker
from workers.messages import ProcessedPage, RoutedPage
from workers.rich import Renderer, metrics
from workers.rich_renderer.record import MIN_ARTICLE_WORDS, encode_fitting, rendered_page
from workers.settings import Settings
from workers.topics import PROCESSED_FINAL, Stage

__all__ = ["MIN_ARTICLE_WORDS", "MIN_FALLBACK_WORDS", "RichRenderer"]

FALLBACKS = Counter("renderer_fallbacks_total", "Pages extracted from raw HTML after a failed render")
MIN_FALLBACK_WORDS = 50
"""A raw page with fewer words than this is not 'usable text' for the fallback."""


class RichRenderer(Worker):
    stage = Stage.RICH_RENDERER
    batch_size = 1

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.max_in_flight = settings.renderer.concurrency * 2
        self.renderer = Renderer(
            settings.renderer, data_dir=settings.stack.data_dir / "rich", ingestor=settings.ingestor
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
                value, processed = await asyncio.to_thread(encode_fitting, processed)
            for part in processed.truncated_parts:
                metrics.TRUNCATED.labels(part).inc()
            PAGES_PROCESSED.labels("rich").inc()
            await self.emit_raw(
                PROCESSED_FINAL, value, key=processed.host.encode(), trace_id=item.trace_id, attempt=1
            )

    async def render(self, routed: RoutedPage) -> ProcessedPage:
        page = routed.page
        if page.skipped or not page.html_zstd or not 200 <= page.status < 300:
            return process_routed(routed, route="rich")  # nothing to render
        try:
            rendered = await self.renderer.render(page)
        except (RetryableError, PermanentError) as exc:
            return self.fallback(routed, exc)
        return await asyncio.to_thread(
            rendered_page,
            routed,
            rendered,
            settings=self.settings.extractor,
            user_agent=self.settings.ingestor.user_agent,
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
