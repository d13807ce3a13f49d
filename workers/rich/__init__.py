"""The rich path: render pages in Chromium (driven by Crawl4AI) with bounded memory and no leaked browsers.

Modules: ``browser`` (Chromium process, profile slots, orphans, memory), ``settle`` (the
wait strategy), ``content`` (rendered DOM to Markdown, metadata, outlinks), ``render``
(the :class:`Renderer`), ``metrics``. crawl4ai is imported lazily by the Renderer, after
its base directory is pointed under the data dir.
"""

from __future__ import annotations

from workers.rich.render import Rendered, Renderer, RendererStats

__all__ = ["Rendered", "Renderer", "RendererStats"]
