"""The rich path: render pages in Chromium, managed by Crawl4AI, with bounded memory and no leaked browsers.

Modules, one concern each: ``render`` (the :class:`Renderer`: slots, deadlines, restarts,
metrics), ``session`` (Chromium + Crawl4AI's BrowserManager over CDP), ``browser``
(the Chromium process, profile slots, PID file, orphans), ``memory`` (PSS of a process
tree), ``scripts`` (the in-page wait strategy and DOM capture), ``content`` (rendered DOM
to Markdown, metadata, outlinks), ``failures`` (browser errors to StreamCrawl errors),
``metrics`` (Prometheus). crawl4ai is imported lazily, after its base directory is
pointed under the data dir.
"""

from __future__ import annotations

from workers.rich.render import Rendered, Renderer, RendererStats

__all__ = ["Rendered", "Renderer", "RendererStats"]
