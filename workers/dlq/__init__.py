"""Dead letters: read them, replay the retryable ones with backoff, park the rest with their history.

Shared by the CLI and Dagster's ``dlq_replay`` job and ``dlq_sensor``, so a dead letter is
replayed in exactly one way:

* ``reading``: :func:`read_dead_letters` / :func:`read_letters_after` read a ``*.dlq`` topic
  without committing anything; :func:`replay_group` names the group that marks how far a
  DLQ was replayed.
* ``policy``: :class:`ReplayPolicy` decides per letter — replay (retryable classes only by
  default, derived from the error tree; not before a backoff that doubles per attempt),
  park (not retryable, past ``max_attempts``, undecodable, unknown source topic), wait
  (not due yet) or skip (an explicit ``error_class`` filter).
* ``replay``: :func:`replay` applies it, committing only after re-publishes are acknowledged
  and parks are written; :func:`replay_states` tells the sensor what is pending and when the
  first pending letter is due.
* ``parking``: the ``dlq_history`` and ``dlq_parked`` tables; a parked letter keeps its whole
  error chain (every attempt's class and message).
"""

from __future__ import annotations

from workers.dlq.parking import (
    HISTORY_TABLE_DDL,
    PARKED_TABLE_DDL,
    Parked,
    ParkFn,
    RememberFn,
    count_parked,
    postgres_history,
    postgres_parker,
)
from workers.dlq.policy import ReplayPolicy, Verdict, letter_identity, retryable_classes
from workers.dlq.reading import Record, read_dead_letters, read_letters_after, replay_group
from workers.dlq.replay import ReplayReport, ReplayState, SettleFn, replay, replay_state, replay_states

__all__ = [
    "HISTORY_TABLE_DDL",
    "PARKED_TABLE_DDL",
    "ParkFn",
    "Parked",
    "Record",
    "RememberFn",
    "ReplayPolicy",
    "ReplayReport",
    "ReplayState",
    "SettleFn",
    "Verdict",
    "count_parked",
    "letter_identity",
    "postgres_history",
    "postgres_parker",
    "read_dead_letters",
    "read_letters_after",
    "replay",
    "replay_group",
    "replay_state",
    "replay_states",
    "retryable_classes",
]
