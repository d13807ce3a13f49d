"""Crawl a batch and wait for its outcomes, for the Prometheus-during-a-crawl test and the drill.

Thin wrappers over the ledger (``tests.helpers.ledger``): the batch's progress is the one
model the CLI shows, a URL's state and reason are its ledger row (``tests.helpers.ledger.ledger_states``).
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.helpers.ledger import crawl_batch
from workers.ledger import BatchProgress
from workers.settings import Settings

__all__ = ["BatchProgress", "crawl_and_wait"]


async def crawl_and_wait(
    settings: Settings, urls: Sequence[str], batch: str, *, timeout_s: float
) -> BatchProgress:
    """Publish ``urls`` as ``batch`` (like `streamcrawl crawl --wait`) and wait until all are accounted for."""
    return await crawl_batch(settings, urls, batch, timeout_s=timeout_s)
