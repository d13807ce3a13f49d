"""When is a running daemon actually useless? Pure rules, evaluated every few seconds.

A process that is up is not necessarily working. Two states are unhealthy once they have
lasted longer than a bound, and the worker then exits non-zero so that supervisord (or
Kubernetes) starts a fresh one:

* **no partitions**: the consumer holds none, and the group is not simply saturated
  (more members than partitions, where an idle member is expected). This is what
  consumers did after the broker lost its storage: joined to nothing, silent, forever.
* **no progress**: it holds partitions but has finished no record, although records are
  in flight or waiting (lag), or it has heard no fetch response at all (broker gone).
  Being caught up with a broker that answers counts as progress.

Readiness (``/readyz``) is weaker: joined with partitions, or idle in a saturated group.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Liveness", "Sample", "Verdict"]


@dataclass(frozen=True, slots=True)
class Sample:
    """What the worker sees now."""

    now: float
    partitions: int
    finished: int
    """Records finished since start (a counter)."""
    in_flight: int
    lag: int
    """Records known to be waiting beyond the fetch position (from fetch high watermarks)."""
    fetch_fresh: bool
    """A fetch response arrived recently for every held partition."""
    group_saturated: bool = False
    """The group has at least as many members as the input topic has partitions."""


@dataclass(frozen=True, slots=True)
class Verdict:
    healthy: bool
    ready: bool
    reason: str
    """Empty when healthy and ready; otherwise what is wrong, e.g. "no partitions for 312 s"."""


class Liveness:
    """Keeps the time of the last good state and judges each sample against the bounds."""

    def __init__(self, *, no_partitions_s: float, stall_s: float, started_at: float) -> None:
        self.no_partitions_s = no_partitions_s
        self.stall_s = stall_s
        self._had_partitions_at = started_at
        self._progress_at = started_at
        self._finished = 0

    def observe(self, s: Sample) -> Verdict:
        if s.partitions > 0 or s.group_saturated:
            self._had_partitions_at = s.now
        caught_up = s.in_flight == 0 and s.lag == 0 and s.fetch_fresh
        if s.finished != self._finished or caught_up or s.partitions == 0:
            self._finished = s.finished
            self._progress_at = s.now
        if s.partitions == 0:
            idle_for = s.now - self._had_partitions_at
            if s.group_saturated:
                return Verdict(True, True, "")
            reason = f"no partitions for {idle_for:.0f} s"
            return Verdict(idle_for <= self.no_partitions_s, False, reason)
        stalled_for = s.now - self._progress_at
        if stalled_for > self.stall_s:
            what = "no fetch response" if not s.fetch_fresh else f"lag {s.lag}, {s.in_flight} in flight"
            return Verdict(False, True, f"no progress for {stalled_for:.0f} s ({what})")
        return Verdict(True, True, "")
