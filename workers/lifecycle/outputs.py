"""Producing a batch's outputs: keep the encoded records, retry the produce, never the handler.

``handle_batch`` may be expensive and have effects outside Kafka (the ingestor fetches a
URL). So once it has built its outputs, a failure to *produce* them is retried by sending
the same encoded records again — the handler is never run a second time for it.

Which produce errors are the record's fault is decided here, not by aiokafka's
``retriable`` flag alone: ``KafkaTimeoutError`` (a slow broker) and ``UnknownError``
(what Tansu answers while its storage is down) are not flagged retriable, yet they say
nothing about the record. Only errors that refuse *this record* — too large, corrupt,
bad timestamp — make it permanent (dead-lettered with the reason). Everything else is an
outage of the broker or its configuration: waited out with backoff, dead-lettering nothing.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from aiokafka.errors import KafkaError

from workers.errors import ProduceRefused

__all__ = ["BatchOutputs", "Output", "batch_outputs", "is_record_refusal", "refusal", "send", "settle"]

# Errors that refuse the record itself: producing the same bytes again can never succeed.
_RECORD_REFUSALS: tuple[type[KafkaError], ...] = (
    kafka_errors.MessageSizeTooLargeError,
    kafka_errors.RecordTooLargeError,
    kafka_errors.RecordListTooLargeError,
    kafka_errors.CorruptRecordException,
    kafka_errors.InvalidTimestampError,
    kafka_errors.UnsupportedForMessageFormatError,
)


def is_record_refusal(exc: BaseException) -> bool:
    """True when the broker or client refuses this record for good (see the module doc)."""
    return isinstance(exc, _RECORD_REFUSALS)


def refusal(topic: str, exc: KafkaError) -> ProduceRefused:
    return ProduceRefused(f"{topic} refused the output record: {exc}")


@dataclass(slots=True, eq=False)
class Output:
    """One record a batch produces, kept encoded until the broker acknowledges it."""

    topic: str
    value: bytes
    key: bytes | None
    headers: list[tuple[str, bytes]]
    source: Any = None
    """The ``Incoming`` it was produced for (dead-lettered if the record is refused)."""
    partition: int | None = None
    """Set: produced to this partition (see ``FailurePolicy.batch_partition``); None: by key."""
    future: asyncio.Future[Any] | None = None
    acked: bool = False


@dataclass(slots=True)
class BatchOutputs:
    """Everything one ``handle_batch`` call produced, and which sources had an output refused."""

    outputs: list[Output] = field(default_factory=list)
    refused: list[tuple[Any, ProduceRefused]] = field(default_factory=list)

    def refuse(self, output: Output, exc: ProduceRefused) -> None:
        output.acked = True  # settled: it will not be sent again
        if output.source is not None and all(src is not output.source for src, _ in self.refused):
            self.refused.append((output.source, exc))

    def unsettled(self) -> list[Output]:
        return [o for o in self.outputs if not o.acked]


batch_outputs: contextvars.ContextVar[BatchOutputs | None] = contextvars.ContextVar(
    "batch_outputs", default=None
)


def _retrieve(future: asyncio.Future[Any]) -> None:
    # An abandoned output's failure (its batch was retried or cancelled) must not be logged
    # by asyncio as "never retrieved"; whoever awaits the future still sees the error.
    if not future.cancelled():
        future.exception()


async def send(producer: AIOKafkaProducer, output: Output) -> None:
    """Enqueue ``output`` (sets ``output.future``); raises the KafkaError for the caller to classify."""
    future = await producer.send(
        output.topic, output.value, key=output.key, headers=output.headers, partition=output.partition
    )
    future.add_done_callback(_retrieve)
    output.future = future


async def settle(outputs: Sequence[Output]) -> list[tuple[Output, BaseException]]:
    """Wait for every sent output's ack; return the ones that failed, with their error."""
    failed: list[tuple[Output, BaseException]] = []
    for output in outputs:
        if output.acked:
            continue
        if output.future is None:
            failed.append((output, KafkaError("not sent")))
            continue
        try:
            await output.future
        except KafkaError as exc:
            failed.append((output, exc))
            output.future = None
        else:
            output.acked = True
    return failed
