"""The router daemon: ``raw.page`` → score → ``process.fast`` or ``process.rich``."""

from __future__ import annotations

from collections.abc import Sequence

from prometheus_client import Counter

from workers.lifecycle import Incoming, Worker
from workers.messages import RawPage, RoutedPage
from workers.router import resolve_weights, score_page
from workers.settings import Settings
from workers.topics import PROCESS_FAST, PROCESS_RICH, Stage

__all__ = ["Router"]

ROUTED = Counter("router_messages_routed_total", "Pages routed, by route", ["route"])


class Router(Worker):
    """Scores each page static vs dynamic without building a DOM and forwards it."""

    stage = Stage.ROUTER
    batch_size = 200
    max_in_flight = 2000

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        # Unknown rule names in STREAMCRAWL_ROUTER_WEIGHTS fail at start, not silently.
        self._weights = resolve_weights(settings.router.weights)
        self._threshold = settings.router.threshold

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            page = await self.decode_or_dead_letter(item, RawPage)
            if page is None:
                continue
            routed = self.route(page)
            topic = PROCESS_FAST if routed.route == "fast" else PROCESS_RICH
            ROUTED.labels(routed.route).inc()
            await self.emit(topic, routed, key=page.host.encode(), source=item)

    def route(self, page: RawPage) -> RoutedPage:
        if page.skipped or not page.html_zstd:
            # Nothing to render: the fast extractor records the skip.
            return RoutedPage(page=page, route="fast", score=100, rules=["skipped"])
        decision = score_page(page.html_bytes(), weights=self._weights, threshold=self._threshold)
        return RoutedPage(page=page, route=decision.route, score=decision.score, rules=list(decision.rules))
