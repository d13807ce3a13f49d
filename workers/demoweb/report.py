"""How a demo crawl compares with the oracle: what `streamcrawl demo --json` reports.

::

    report = demo_report(expectation, stored_hashes, progress)
    report.to_json()  # {"expected", "stored", "dead_lettered", "skipped", "discovered",
                      #  "unexpected", "missing", "lost", "requested", "exact", ...}

* ``expected`` — pages the oracle says a correct crawl stores (an upper bound when not exact);
* ``stored`` — pages of the batch actually stored (from PostgreSQL, not from counters);
* ``unexpected`` — stored but not expected: a page discovery should never have requested
  (nofollow, out of scope, too deep, robots) or should not have stored (noindex, non-HTML);
* ``missing`` — expected (and certain, in any processing order) but not stored;
* ``lost`` — requested URLs the batch never accounted for (progress: neither stored,
  skipped nor dead-lettered before the deadline);
* ``dead_lettered``, ``skipped`` (by reason), ``discovered``, ``requested`` — the batch's
  progress counts, beside the oracle's ``expected_*`` counts.

A correct crawl has ``lost == unexpected == missing == 0`` and, when the oracle is exact,
``stored == expected``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from workers.demoweb.oracle import Expectation
from workers.urls import url_hash

__all__ = ["CrawlProgress", "DemoReport", "ProgressCounts", "demo_report"]

_SAMPLES = 5


class CrawlProgress(Protocol):
    """What the demo needs from a finished batch's progress (the batch-progress model)."""

    @property
    def requested(self) -> int: ...
    @property
    def discovered(self) -> int: ...
    @property
    def stored(self) -> int: ...
    @property
    def dead_lettered(self) -> int: ...
    @property
    def skipped(self) -> Mapping[str, int]: ...
    @property
    def lost(self) -> int: ...


@dataclass(frozen=True, slots=True)
class ProgressCounts:
    """A plain :class:`CrawlProgress`."""

    requested: int
    stored: int
    dead_lettered: int
    lost: int
    discovered: int = 0
    skipped: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class DemoReport:
    batch: str
    expected: int
    stored: int
    unexpected: int
    missing: int
    lost: int
    requested: int
    discovered: int
    dead_lettered: int
    skipped: dict[str, int]
    exact: bool
    expected_requested: int
    expected_dead_lettered: int
    expected_skipped: dict[str, int]
    unexpected_sample: tuple[str, ...] = ()
    """Some unexpected stored pages (url_hash, or URL when the oracle knows it)."""
    missing_sample: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.lost == 0 and self.unexpected == 0 and self.missing == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "batch": self.batch,
            "expected": self.expected,
            "stored": self.stored,
            "dead_lettered": self.dead_lettered,
            "skipped": self.skipped,
            "discovered": self.discovered,
            "unexpected": self.unexpected,
            "missing": self.missing,
            "lost": self.lost,
            "requested": self.requested,
            "exact": self.exact,
            "expected_requested": self.expected_requested,
            "expected_dead_lettered": self.expected_dead_lettered,
            "expected_skipped": self.expected_skipped,
        }

    def explain(self) -> list[str]:
        """Lines for a human (stderr) saying what went wrong, empty when all is well."""
        out = []
        if not self.exact:
            out.append(
                "the oracle is not exact for this crawl (expected is an upper bound): "
                + "; ".join(self.notes[:2])
            )
        if self.unexpected:
            out.append(
                f"{self.unexpected} stored pages a correct crawl does not store, e.g. {', '.join(self.unexpected_sample)}"
            )
        if self.missing:
            out.append(
                f"{self.missing} pages a correct crawl stores are missing, e.g. {', '.join(self.missing_sample)}"
            )
        if self.lost:
            out.append(
                f"{self.lost} requested URLs were never accounted for (stored, skipped or dead-lettered)"
            )
        return out


def demo_report(
    expectation: Expectation, stored_hashes: Collection[str], progress: CrawlProgress, *, batch: str
) -> DemoReport:
    """Compare the batch's stored url_hashes and progress with the oracle's expectation."""
    expected_by_hash = {url_hash(u): u for u in expectation.stored}
    certain = {url_hash(u): u for u in expectation.certain_stored}
    stored = set(stored_hashes)
    unexpected = sorted(stored - expected_by_hash.keys())
    known = {url_hash(u): u for u in expectation.urls} | {url_hash(u): u for u in expectation.dropped}
    missing = sorted(certain.keys() - stored)
    return DemoReport(
        batch=batch,
        expected=expectation.expected,
        stored=len(stored),
        unexpected=len(unexpected),
        missing=len(missing),
        lost=progress.lost,
        requested=progress.requested,
        discovered=progress.discovered,
        dead_lettered=progress.dead_lettered,
        skipped=dict(sorted(progress.skipped.items())),
        exact=expectation.exact,
        expected_requested=expectation.requested,
        expected_dead_lettered=sum(expectation.dead_lettered.values()),
        expected_skipped=dict(sorted(expectation.skipped.items())),
        unexpected_sample=tuple(known.get(h, h) for h in unexpected[:_SAMPLES]),
        missing_sample=tuple(certain[h] for h in missing[:_SAMPLES]),
        notes=tuple(expectation.notes),
    )
