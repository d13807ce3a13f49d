"""Crawl a batch and read its outcomes, for the Prometheus-during-a-crawl test and the drill.

Thin wrappers over the ledger (``tests.helpers.ledger``): the batch's progress is the one
model the CLI shows, and its stored URLs are the ledger rows in state ``stored``.
"""

from __future__ import annotations

from collections.abc import Sequence

from tests.helpers.ledger import crawl_batch, ledger_states
from workers.ledger import BatchProgress
from workers.settings import Settings

__all__ = ["BatchProgress", "assert_accounted", "crawl_and_wait", "stored_hashes"]


async def crawl_and_wait(
    settings: Settings, urls: Sequence[str], batch: str, *, timeout_s: float
) -> BatchProgress:
    """Publish ``urls`` as ``batch`` (like `streamcrawl crawl --wait`) and wait until all are accounted for."""
    return await crawl_batch(settings, urls, batch, timeout_s=timeout_s)


def assert_accounted(progress: BatchProgress, *, requested: int, context: object = None) -> None:
    """Every requested URL reached an outcome (stored, skipped or dead-lettered with its reason): 0 lost."""
    summary = progress.summary()
    assert summary["requested"] == requested, summary
    assert progress.complete and summary["in_flight"] == 0, (summary, context)


async def stored_hashes(settings: Settings, progress: BatchProgress, batch: str) -> set[str]:
    """URL hashes of the batch that were stored."""
    return {h for h, row in (await ledger_states(settings, batch)).items() if row["state"] == "stored"}
