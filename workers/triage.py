"""Dead-letter triage: which letters still matter, and replaying them — for the CLI and Dagster.

A dead letter is **resolved** when the ledger says its URL got a better verdict in its batch
since (stored, unchanged or skipped: a replay, a retry or a re-delivery succeeded) — or, for a
letter without a batch, when a ``pages`` row exists for its URL. Triage shows only unresolved
letters unless asked for all.

* :class:`LetterFilter` — batch, error class, stage, resolved or not: the filters of
  `streamcrawl dlq`, `streamcrawl dlq replay` and Dagster's ``dlq_replay`` job.
* :func:`scan_letters` — every letter of the chosen DLQs, read in chunks (payloads are not
  kept), counted and filtered, with the first ``limit`` matches kept for display.
* :func:`replay_letters` — :func:`workers.dlq.replay` (the one replay) restricted to the
  filter's letters: the ones outside batch/class/stage are skipped as with ``error_class``
  (a later unfiltered replay still sees them); resolved ones are committed past, not replayed.
* :func:`tls_failed_hosts` — hosts whose every https URL in a batch failed its TLS handshake
  (from the ledger, confirmed by the letters' messages): `crawl` suggests ``--scheme http``.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from workers.dlq import (
    ReplayPolicy,
    ReplayReport,
    postgres_history,
    postgres_parker,
    read_letters_after,
    replay,
)
from workers.errors import ConfigError
from workers.ledger.follow import connect
from workers.messages import DeadLetter
from workers.settings import KafkaSettings, PostgresSettings
from workers.topics import DLQ_TOPICS, STAGES, Stage, Topic
from workers.urls import host_of

__all__ = [
    "LetterFilter",
    "LetterScan",
    "is_tls_failure",
    "replay_letters",
    "resolved_letters",
    "scan_letters",
    "tls_failed_hosts",
]

_CHUNK = 2_000
_RESOLVED_STATES = ("stored", "unchanged", "skipped")

Key = tuple[str | None, str | None]
"""(batch, url_hash) of a letter."""


def _key(letter: DeadLetter) -> Key:
    return (letter.batch, letter.url_hash)


@dataclass(frozen=True, slots=True)
class LetterFilter:
    batch: str | None = None
    error_class: str | None = None
    stage: str | None = None
    """A :class:`~workers.topics.Stage` value; it also narrows the DLQs read to that stage's."""
    include_resolved: bool = False

    def __post_init__(self) -> None:
        if self.stage is not None and self.stage not in {s.value for s in Stage}:
            names = ", ".join(s.value for s in Stage)
            raise ConfigError(f"unknown stage {self.stage!r}; use one of {names}")

    def topics(self, topic: Topic | None = None) -> tuple[Topic, ...]:
        """The DLQs to read: ``topic`` if given, else the stage's, else all."""
        if topic is not None:
            if self.stage is not None and STAGES[Stage(self.stage)].dlq != topic:
                raise ConfigError(
                    f"stage {self.stage} dead-letters to {STAGES[Stage(self.stage)].dlq.name}, not {topic.name}"
                )
            return (topic,)
        return DLQ_TOPICS if self.stage is None else (STAGES[Stage(self.stage)].dlq,)

    def matches(self, letter: DeadLetter) -> bool:
        """Batch, error class and stage (resolution needs the ledger: :func:`resolved_letters`)."""
        return (
            (self.batch is None or letter.batch == self.batch)
            and (self.error_class is None or letter.error_class == self.error_class)
            and (self.stage is None or letter.stage == self.stage)
        )

    def describe(self) -> str:
        parts = [
            f"{f.name}={getattr(self, f.name)}"
            for f in dataclasses.fields(self)
            if f.name != "include_resolved"
        ]
        shown = [p for p in parts if not p.endswith("=None")]
        return ", ".join(shown) or "all letters"


async def resolved_letters(conn: asyncpg.Connection, letters: Sequence[DeadLetter]) -> set[Key]:
    """The (batch, url_hash) of ``letters`` whose URL got a better verdict since (see module doc)."""
    in_batch = {_key(x) for x in letters if x.batch is not None and x.url_hash is not None}
    loose = {x.url_hash for x in letters if x.batch is None and x.url_hash is not None}
    out: set[Key] = set()
    if in_batch and await conn.fetchval("SELECT to_regclass('crawl_urls') IS NOT NULL"):
        batches, hashes = zip(*in_batch, strict=True)
        rows = await conn.fetch(
            "SELECT u.batch, u.url_hash FROM crawl_urls u"
            " JOIN unnest($1::text[], $2::text[]) AS k(batch, url_hash)"
            " ON u.batch = k.batch AND u.url_hash = k.url_hash"
            " WHERE u.state = ANY($3::text[])",
            list(batches),
            list(hashes),
            list(_RESOLVED_STATES),
        )
        out |= {(r["batch"], r["url_hash"]) for r in rows}
    if loose and await conn.fetchval("SELECT to_regclass('pages') IS NOT NULL"):
        rows = await conn.fetch("SELECT url_hash FROM pages WHERE url_hash = ANY($1::text[])", list(loose))
        out |= {(None, r["url_hash"]) for r in rows}
    return out


def letter_row(topic: Topic, offset: int, letter: DeadLetter) -> dict[str, Any]:
    """A letter without its payload, as `dlq --json` prints it."""
    return {
        "dlq": topic.name,
        "offset": offset,
        "url": letter.url,
        "stage": letter.stage,
        "error_class": letter.error_class,
        "error": letter.error_message,
        "attempt": letter.attempt,
        "source": f"{letter.source_topic}[{letter.partition}]@{letter.offset}",
        "batch": letter.batch,
        "last_failure_at": letter.last_failure_at,
    }


@dataclass(slots=True)
class LetterScan:
    """What :func:`scan_letters` found in one DLQ."""

    topic: Topic
    read: int = 0
    """Letters in the topic (all of them were read)."""
    matched: int = 0
    """Letters matching the filter (resolved ones only with ``include_resolved``)."""
    resolved_hidden: int = 0
    """Letters matching batch/class/stage that are resolved and were left out."""
    urls: int = 0
    """Distinct (batch, URL) among the matches."""
    by_error_class: Counter[str] = field(default_factory=Counter)
    shown: list[dict[str, Any]] = field(default_factory=list)


async def scan_letters(
    kafka: KafkaSettings,
    pg: PostgresSettings,
    filt: LetterFilter,
    *,
    topics: Sequence[Topic],
    limit: int,
) -> list[LetterScan]:
    """Read every letter of ``topics`` (in chunks; nothing committed) and count what matches."""
    conn = await connect(pg)
    try:
        return [await _scan(kafka, conn, filt, topic, limit) for topic in topics]
    finally:
        await conn.close()


async def _scan(
    kafka: KafkaSettings, conn: asyncpg.Connection, filt: LetterFilter, topic: Topic, limit: int
) -> LetterScan:
    scan = LetterScan(topic=topic)
    positions: dict[int, int] = {}
    urls: set[Key] = set()
    while True:
        chunk, positions = await read_letters_after(kafka, topic, positions=positions, limit=_CHUNK)
        if not chunk:
            break
        scan.read += len(chunk)
        candidates = [(r, x) for r, x in chunk if filt.matches(x)]
        resolved = (
            set() if filt.include_resolved else await resolved_letters(conn, [x for _, x in candidates])
        )
        for record, letter in candidates:
            if _key(letter) in resolved:
                scan.resolved_hidden += 1
                continue
            scan.matched += 1
            scan.by_error_class[letter.error_class] += 1
            urls.add(
                _key(letter) if letter.url_hash else (letter.batch, f"@{record.partition}:{record.offset}")
            )
            if len(scan.shown) < limit:
                scan.shown.append(letter_row(topic, record.offset, letter))
    scan.urls = len(urls)
    return scan


async def replay_letters(
    kafka: KafkaSettings,
    pg: PostgresSettings,
    topic: Topic,
    filt: LetterFilter,
    *,
    max_records: int,
    policy: ReplayPolicy,
    dry_run: bool = False,
) -> ReplayReport:
    """Replay ``topic``'s letters that match ``filt`` with :func:`workers.dlq.replay`.

    Letters outside the filter's batch, class or stage are skipped (left for a later replay).
    Unless ``include_resolved``, a resolved letter is committed past without a replay: its
    URL is stored, so fetching it again would only repeat work.
    """
    conn = await connect(pg)

    async def settled(letters: Sequence[DeadLetter]) -> list[bool]:
        done = await resolved_letters(conn, letters)
        return [_key(x) in done for x in letters]

    try:
        return await replay(
            kafka,
            topic,
            max_records=max_records,
            policy=policy,
            park=postgres_parker(pg),
            remember=postgres_history(pg),
            select=filt.matches,
            settled=None if filt.include_resolved else settled,
            dry_run=dry_run,
        )
    finally:
        await conn.close()


def is_tls_failure(letter: DeadLetter) -> bool:
    """A fetch that failed its TLS handshake (the ingestor's message says so; see failures.py)."""
    return letter.error_class == "TLSFetchError" or "TLS handshake" in letter.error_message


async def tls_failed_hosts(
    conn: asyncpg.Connection, kafka: KafkaSettings, batch: str, *, max_letters: int = 200_000
) -> list[tuple[str, int]]:
    """(host, URLs) of hosts whose every https URL in ``batch`` was dead-lettered by a TLS handshake.

    The ledger names the hosts whose https URLs all died before a fetch succeeded (one query
    over the batch's rows); only then are the ingestor's letters of the batch read to confirm
    that each such URL's failure was the TLS handshake.
    """
    rows = await conn.fetch(
        "SELECT host, count(*) AS n FROM crawl_urls WHERE batch = $1 AND kind = 'page'"
        " AND url LIKE 'https://%' GROUP BY host HAVING bool_and(state = 'dead' AND NOT fetched)",
        batch,
    )
    candidates = {r["host"]: int(r["n"]) for r in rows}
    if not candidates:
        return []
    tls: dict[str, set[str]] = {h: set() for h in candidates}
    other: set[str] = set()
    topic = STAGES[Stage.INGESTOR].dlq
    positions: dict[int, int] = {}
    read = 0
    while read < max_letters:
        chunk, positions = await read_letters_after(kafka, topic, positions=positions, limit=_CHUNK)
        if not chunk:
            break
        read += len(chunk)
        for _record, letter in chunk:
            host = host_of(letter.url) if letter.url else ""
            if letter.batch != batch or host not in candidates or letter.url_hash is None:
                continue
            if is_tls_failure(letter):
                tls[host].add(letter.url_hash)
            else:
                other.add(host)
    return sorted(
        ((h, n) for h, n in candidates.items() if h not in other and len(tls[h]) >= n),
        key=lambda hn: -hn[1],
    )
