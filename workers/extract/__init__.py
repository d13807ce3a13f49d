"""The fast extractor's pure logic: HTML bytes in, metadata + main content out.

One selectolax (lexbor) parse per page; see :func:`extract`. Modules, one concern each:
``charset`` (decoding), ``metadata`` (title, description, lang, canonical, published),
``links`` (URL resolution, outlinks), ``content`` (main-content extraction),
``markdown`` (Markdown of the main content), ``text`` (normalisation, tokens, hash),
``simhash``.
"""

from __future__ import annotations

from workers.extract.extractor import Extracted, extract

__all__ = ["Extracted", "extract"]
