"""Crawl a batch and read its outcomes, for the Prometheus-during-a-crawl test and the drill.

The one place those tests touch the batch-progress model, so that moving them onto the
lead's ledger (``tests.helpers.ledger.crawl_batch`` / ``ledger_states``) changes only this file.
"""

from __future__ import annotations

from collections.abc import Sequence

from workers.cli.cmd_crawl import crawl
from workers.frontier import parse_list_lines
from workers.progress import BatchProgress
from workers.settings import Settings
from workers.topics import STORAGE_SAVED

__all__ = ["BatchProgress", "assert_accounted", "crawl_and_wait", "stored_hashes"]


async def crawl_and_wait(
    settings: Settings, urls: Sequence[str], batch: str, *, timeout_s: float
) -> BatchProgress:
    """Publish ``urls`` as ``batch`` (like `streamcrawl crawl --wait`) and wait until all are accounted for."""
    parsed = parse_list_lines(list(urls), scheme="http")
    progress = await crawl(settings, parsed, batch=batch, wait=True, timeout_s=timeout_s)
    assert progress is not None
    return progress


def assert_accounted(progress: BatchProgress, *, requested: int, context: object = None) -> None:
    """Every requested URL reached an outcome (stored or dead-lettered with its reason): 0 lost."""
    summary = progress.summary()
    assert summary["requested"] == requested, summary
    assert summary["lost"] == 0, (summary, context)


async def stored_hashes(settings: Settings, progress: BatchProgress, batch: str) -> set[str]:
    """URL hashes of the batch that were stored."""
    return set(progress.seen.get(STORAGE_SAVED.name, set()))
