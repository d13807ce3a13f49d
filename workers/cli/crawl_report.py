"""What `crawl --wait` says at the end: the outcome, a breakdown by reason, hints, the exit status.

Everything comes from the batch's ledger row (:class:`~workers.ledger.BatchProgress`): the
counts shown are the batch's real outcome, and each reason comes with the example URL the
ledger kept for it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from workers.errors import StreamCrawlError
from workers.ledger import BatchProgress
from workers.ledger.follow import connect
from workers.lists import Rejected
from workers.settings import Settings
from workers.triage import tls_failed_hosts

__all__ = [
    "EXIT_DEAD_SHARE",
    "EXIT_NOTHING_STORED",
    "EXIT_TIMEOUT",
    "Verdict",
    "batch_hints",
    "breakdown",
    "print_rejected",
    "report",
    "verdict",
]

EXIT_TIMEOUT = 4
"""``--timeout`` passed with URLs still in flight."""
EXIT_NOTHING_STORED = 5
"""Every URL was dead-lettered or skipped (none stored, and not all of them already were)."""
EXIT_DEAD_SHARE = 6
"""More than ``--max-dead-share`` of the requested URLs were dead-lettered."""
_SHOWN_REJECTED = 10


@dataclass(frozen=True, slots=True)
class Verdict:
    code: int
    reason: str | None = None
    """One line saying why the status is not 0."""


def verdict(p: BatchProgress, *, max_dead_share: float, timeout_s: float | None = None) -> Verdict:
    """The exit status of `crawl --wait` for ``p`` (codes in the command's help)."""
    if not p.complete:
        within = f" within {timeout_s:.0f} s" if timeout_s is not None else ""
        return Verdict(
            EXIT_TIMEOUT,
            f"{p.in_flight} URLs were not accounted for{within}: check `streamcrawl status` (are the "
            "workers up?) and wait longer with --timeout",
        )
    already = p.skipped_by_reason.get("already_stored", 0)
    if p.stored + p.unchanged == 0 and p.requested > already:
        return Verdict(
            EXIT_NOTHING_STORED,
            f"nothing was stored: {p.dead_lettered} of {p.requested} URLs dead-lettered, {p.skipped} skipped",
        )
    if p.requested and p.dlq_rate > max_dead_share:
        return Verdict(
            EXIT_DEAD_SHARE,
            f"{p.dlq_rate:.0%} of the requested URLs were dead-lettered "
            f"(more than --max-dead-share {max_dead_share:g})",
        )
    return Verdict(0)


def print_rejected(
    rejected: Sequence[tuple[str, Rejected]], *, several_files: bool, limit: int | None = _SHOWN_REJECTED
) -> None:
    """The refused list lines on stderr: the first ``limit`` with their line number and reason."""
    for name, r in rejected[:limit]:
        where = f"{name} line {r.line}" if several_files else f"line {r.line}"
        shown = f" {r.text[:80]!r}" if r.text else ""
        reason = r.reason.removesuffix(f": {r.text!r}")  # URL errors end with the input: shown once
        sys.stderr.write(f"refused {where}:{shown}: {reason}\n")
    if limit is not None and len(rejected) > limit:
        sys.stderr.write(f"… and {len(rejected) - limit} more refused lines (--dry-run lists them all)\n")


def breakdown(p: BatchProgress) -> list[str]:
    """Lines of the by-reason breakdown, each reason with its count and one example URL."""
    sections = (
        ("skipped by reason", "skipped", p.skipped_by_reason),
        ("dead-lettered by error class", "dead", p.dead_by_reason),
        ("robots.txt/sitemap reads that failed", "aux_dead", p.aux_dead_by_reason),
        ("links not followed, by reason", "dropped", p.dropped_by_reason),
    )
    lines: list[str] = []
    for title, outcome, counts in sections:
        if not counts:
            continue
        lines.append(f"{title}:")
        width = max(len(r) for r in counts)
        for reason, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            example = p.examples.get(f"{outcome}:{reason}")
            lines.append(f"  {reason:<{width}}  {n:>7}" + (f"  e.g. {example}" if example else ""))
    return lines


def _headline(p: BatchProgress) -> str:
    discovered = f" ({p.discovered} discovered)" if p.discovered else ""
    duration = f" in {p.duration_s:.1f} s" if p.duration_s is not None else ""
    return (
        f"batch {p.batch}: requested {p.requested}{discovered} · stored {p.stored} · "
        f"unchanged {p.unchanged} · skipped {p.skipped} · dead-lettered {p.dead_lettered} · "
        f"in flight {p.in_flight} · {p.pages_per_s:.1f} pages/s{duration}"
    )


async def batch_hints(settings: Settings, batch: str) -> list[str]:
    """Advice derived from the batch's failures (today: hosts that only fail TLS on https)."""
    try:
        conn = await connect(settings)
    except StreamCrawlError:
        return []
    try:
        hosts = await tls_failed_hosts(conn, settings.kafka, batch)
    finally:
        await conn.close()
    if not hosts:
        return []
    named = ", ".join(f"{h} ({n} URL{'s' if n != 1 else ''})" for h, n in hosts[:3])
    more = f" and {len(hosts) - 3} more" if len(hosts) > 3 else ""
    return [
        f"{len(hosts)} host{'s' if len(hosts) != 1 else ''} failed the TLS handshake on every https URL: "
        f"{named}{more}. If they serve plain HTTP, crawl them again with --scheme http (bare domains) "
        "or as http:// URLs."
    ]


def report(
    p: BatchProgress,
    outcome: Verdict,
    *,
    json_out: bool,
    rejected: int,
    hints: Sequence[str] = (),
) -> int:
    """Print the outcome (stdout) and the verdict (stderr); returns the exit status."""
    if json_out:
        summary = {
            **p.summary(),
            "rejected": rejected,
            "lost": p.in_flight,
            "examples": dict(p.examples),
            "hints": list(hints),
            "exit_code": outcome.code,
        }
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        lines = [_headline(p), *breakdown(p)]
        if p.dead_lettered:
            lines.append(
                f"see the dead letters: `streamcrawl dlq --batch {p.batch}`; retry them: "
                f"`streamcrawl dlq replay --batch {p.batch}`"
            )
        if p.stored:
            lines.append(f"export the pages: `streamcrawl export --batch {p.batch}`")
        sys.stdout.write("".join(f"{line}\n" for line in lines))
    for hint in hints:
        sys.stderr.write(f"hint: {hint}\n")
    if outcome.reason:
        sys.stderr.write(f"streamcrawl crawl: {outcome.reason}\n")
    return outcome.code
