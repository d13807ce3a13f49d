"""The crawl ledger in PostgreSQL: batches, the URL-seen store, outcomes and progress.

::

    publish_batch(conn, kafka, BatchSpec(...), entries)   # CLI, Dagster, API, demo
    admit(conn, batch=..., scope=..., candidates=[...])   # new-to-the-batch, under budgets
    record_outcomes(conn, [Outcome(...)])                  # discovery: stored/skipped/dead…
    read_progress(conn, batch) -> BatchProgress            # one model, O(1) per poll

Tables (migration 0002): ``crawl_batches`` (one row per batch, with counters),
``crawl_urls`` (one row per URL a batch requested), ``crawl_host_counts`` (per-host budget),
``crawl_batch_reasons`` (counts per skip/dead/drop reason).
"""

from __future__ import annotations

from workers.ledger.admission import Admission, Candidate, add_reasons, admit
from workers.ledger.batches import BatchSpec, create_batch, mark_published, scope_from_json, scope_to_json
from workers.ledger.outcomes import STATE_RANK, Outcome, Transition, record_outcomes
from workers.ledger.progress import BatchProgress, RateMeter, list_progress, read_progress
from workers.ledger.publish import PublishResult, aux_hash, build_requests, publish_batch, republish

__all__ = [
    "STATE_RANK",
    "Admission",
    "BatchProgress",
    "BatchSpec",
    "Candidate",
    "Outcome",
    "PublishResult",
    "RateMeter",
    "Transition",
    "add_reasons",
    "admit",
    "aux_hash",
    "build_requests",
    "create_batch",
    "list_progress",
    "mark_published",
    "publish_batch",
    "read_progress",
    "record_outcomes",
    "republish",
    "scope_from_json",
    "scope_to_json",
]
