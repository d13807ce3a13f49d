"""What to do with one dead letter: replay it, park it, or wait for it to be due.

A letter knows its ``error_class``. By default only **retryable** classes are replayed:
the names of :class:`~workers.errors.RetryableError` and every subclass of it
(``TransientFetchError``, ``DependencyUnavailable``, …), derived from the error tree, not
listed by hand. A 404, a robots or SSRF refusal, a record the sink rejects or an
unexpected exception (a poison record) is parked at once: replaying it can only fail the
same way. An explicit ``error_class`` filter replays letters of that class whatever it is.

Replays back off between rounds: a letter that failed ``attempt`` times is not replayed
before ``last_failure_at + backoff_s * 2**(attempt - 1)`` (capped at ``max_backoff_s``).
Until then it **waits**: the replay stops reading its partition there (so nothing after
it is replayed twice) and the sensor asks again once the first letter is due.

A letter parked after ``max_attempts`` keeps its whole error chain (every earlier
attempt's class and message, see ``workers/dlq/parking.py``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

from workers.errors import RetryableError
from workers.messages import DeadLetter
from workers.topics import topic_by_name

__all__ = ["ReplayPolicy", "Verdict", "letter_identity", "retryable_classes"]


def retryable_classes() -> frozenset[str]:
    """Names of RetryableError and all its subclasses (the error tree decides, not a list)."""
    names: set[str] = set()
    stack: list[type] = [RetryableError]
    while stack:
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    return frozenset(names)


def letter_identity(letter: DeadLetter) -> str:
    """What stays the same across a record's failures and replays: batch and URL (or payload)."""
    what = letter.url_hash or hashlib.blake2b(letter.payload, digest_size=16).hexdigest()
    return f"{letter.batch or ''}|{what}"


@dataclass(frozen=True, slots=True)
class Verdict:
    action: Literal["replay", "park", "wait", "skip"]
    reason: str | None = None
    """Why a letter is parked."""
    due_at: float = 0.0
    """When a waiting letter may be replayed (epoch seconds)."""


@dataclass(frozen=True, slots=True)
class ReplayPolicy:
    max_attempts: int
    backoff_s: float = 60.0
    max_backoff_s: float = 6 * 3600.0
    retryable_only: bool = True
    error_class: str | None = None
    """Replay only this class (whatever it is); other letters are skipped."""

    def due_at(self, letter: DeadLetter, attempt: int) -> float:
        delay = min(self.max_backoff_s, self.backoff_s * 2.0 ** max(0, attempt - 1))
        return float(letter.last_failure_at + delay)

    def judge(self, letter: DeadLetter, attempt: int, *, now: float) -> Verdict:
        """The verdict for ``letter`` (``attempt`` = failures so far) at ``now``."""
        if self.error_class is not None and letter.error_class != self.error_class:
            return Verdict("skip")
        if letter.stage == "unknown":
            return Verdict("park", "undecodable dead letter")
        if attempt >= self.max_attempts:
            return Verdict("park", f"failed {attempt} times (max_attempts={self.max_attempts})")
        try:
            topic_by_name(letter.source_topic)
        except KeyError:
            return Verdict("park", f"unknown source topic {letter.source_topic!r}")
        if self.error_class is None and self.retryable_only and letter.error_class not in retryable_classes():
            return Verdict("park", f"not retryable: {letter.error_class}")
        due = self.due_at(letter, attempt)
        if now < due:
            return Verdict("wait", due_at=due)
        return Verdict("replay")
