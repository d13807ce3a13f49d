"""The failure policy every worker applies to a batch, and the producing API of the stages.

* ``DependencyUnavailable`` raised by the handler (PostgreSQL or S3 down): the batch is
  handled again after a capped backoff, for as long as the worker runs; no attempt spent.
* a produce that is not acknowledged (broker slow or down): the **same encoded records**
  are sent again after a backoff; the handler is not run again (workers/lifecycle/outputs.py).
* a produce the broker refuses for good (too large): the input record is dead-lettered
  with ``ProduceRefused``; the batch's other outputs stand.
* any other failure of a multi-record batch: the batch is split and each record handled
  alone; a record alone is retried up to ``max_attempts`` on a ``RetryableError``, and
  dead-lettered at once on a ``PermanentError`` or an unexpected exception (poison).
"""

from __future__ import annotations

import abc
import asyncio
import logging
import random
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, ClassVar, TypeVar

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from workers.errors import (
    DependencyUnavailable,
    MessageDecodeError,
    PermanentError,
    ProduceRefused,
    RetryableError,
)
from workers.lifecycle.letters import LETTER_HEADROOM_BYTES, build_letter
from workers.lifecycle.outputs import (
    BatchOutputs,
    Output,
    batch_outputs,
    is_record_refusal,
    refusal,
    send,
    settle,
)
from workers.lifecycle.retry import backoff_delay
from workers.messages import Message, decode, encode, make_headers
from workers.observability.logs import trace_id_var
from workers.observability.metrics import DEAD_LETTERS, PRODUCE_RETRIES, RETRIES
from workers.settings import Settings
from workers.topics import Stage, StageTopics, Topic

if TYPE_CHECKING:
    from workers.lifecycle.worker import Incoming

__all__ = ["FailurePolicy"]

M = TypeVar("M", bound=Message)

log = logging.getLogger("workers.lifecycle.worker")


class FailurePolicy(abc.ABC):
    """Retry, split and dead-letter decisions, and producing a batch's outputs until acknowledged."""

    stage: ClassVar[Stage]
    settings: Settings
    topics: StageTopics
    _stopping: asyncio.Event
    _producer: AIOKafkaProducer | None
    _sticky_turns: dict[str, int]

    @abc.abstractmethod
    async def handle_batch(self, batch: Sequence[Incoming]) -> None: ...

    async def _handle_with_policy(self, batch: list[Incoming]) -> None:
        if len(batch) == 1:
            await self._handle_single(batch[0])
            return
        outages = 0
        while True:
            try:
                await self._handle_and_ack(batch)
                return
            except DependencyUnavailable as exc:
                outages += 1
                await self._wait_out_outage(outages, exc)
            except Exception:  # noqa: BLE001 - retryable, permanent or poison: isolate the records
                break
        for item in batch:
            await self._handle_single(item)

    async def _handle_single(self, item: Incoming) -> None:
        first_failure: float | None = None
        attempt = outages = 0
        while True:
            try:
                await self._handle_and_ack([item])
                return
            except DependencyUnavailable as exc:
                outages += 1  # an outage is not the record's fault: no attempt is spent
                await self._wait_out_outage(outages, exc)
            except RetryableError as exc:
                attempt += 1
                first_failure = first_failure or time.time()
                if attempt >= self.settings.worker.max_attempts:
                    await self.dead_letter(item, exc, first_failure_at=first_failure)
                    return
                RETRIES.labels(self.stage.value).inc()
                await asyncio.sleep(self._delay(attempt, exc))
            except Exception as exc:
                if not isinstance(exc, PermanentError):
                    log.exception("unexpected error handling a record; dead-lettering it")
                await self.dead_letter(item, exc, first_failure_at=first_failure or time.time())
                return

    async def _handle_and_ack(self, batch: Sequence[Incoming]) -> None:
        outputs = BatchOutputs()
        outputs_token = batch_outputs.set(outputs)
        trace_token = trace_id_var.set(batch[0].trace_id if len(batch) == 1 else "")
        try:
            await self.handle_batch(batch)
            # From here on the handler's work is done: only the produce is retried.
            await self._settle_outputs(outputs)
            for source, exc in outputs.refused:
                await self.dead_letter(source, exc, first_failure_at=time.time())
        finally:
            trace_id_var.reset(trace_token)
            batch_outputs.reset(outputs_token)

    async def _send_with_retry(self, output: Output, outputs: BatchOutputs | None) -> None:
        """Hand ``output`` to the producer, waiting out a full buffer or missing metadata."""
        producer = self._producer
        assert producer is not None
        outages = 0
        while True:
            try:
                await send(producer, output)
                return
            except KafkaError as exc:
                if is_record_refusal(exc):
                    refused = refusal(output.topic, exc)
                    if outputs is None or output.source is None:
                        raise refused from exc
                    outputs.refuse(output, refused)
                    return
                outages += 1
                await self._wait_out_outage(
                    outages, DependencyUnavailable(f"produce to {output.topic}: {exc}")
                )

    async def _settle_outputs(self, outputs: BatchOutputs) -> None:
        """Wait for every ack; send unacknowledged records again until the broker takes them."""
        outages = 0
        while True:
            failed = await settle(outputs.unsettled())
            if not failed:
                return
            retry: list[Output] = []
            for output, exc in failed:
                if is_record_refusal(exc) and output.source is not None:
                    outputs.refuse(output, refusal(output.topic, exc))
                elif is_record_refusal(exc):
                    raise refusal(output.topic, exc) from exc
                else:
                    retry.append(output)
            if not retry:
                return
            outages += 1
            PRODUCE_RETRIES.labels(self.stage.value).inc(len(retry))
            await self._wait_out_outage(
                outages, DependencyUnavailable(f"{len(retry)} produce(s) not acknowledged: {failed[0][1]}")
            )
            for output in retry:
                await self._send_with_retry(output, outputs)

    async def _produce_now(self, output: Output) -> None:
        """Produce one record outside any batch and wait for its ack (outages waited out)."""
        await self._send_with_retry(output, None)
        await self._settle_outputs(BatchOutputs([output]))

    async def _wait_out_outage(self, outages: int, exc: DependencyUnavailable) -> None:
        """Back off while Kafka/PostgreSQL/S3 is down; on shutdown give the record up uncommitted."""
        if self._stopping.is_set():
            raise asyncio.CancelledError from exc
        RETRIES.labels(self.stage.value).inc()
        delay = backoff_delay(
            min(outages, 8),
            base=self.settings.worker.retry_base_delay_s,
            cap=self.settings.worker.retry_max_delay_s,
        )
        log.warning("dependency unavailable (%s); retrying in %.1fs", exc, delay)
        await asyncio.sleep(delay)

    def _delay(self, attempt: int, exc: RetryableError) -> float:
        return backoff_delay(
            attempt,
            base=self.settings.worker.retry_base_delay_s,
            cap=self.settings.worker.retry_max_delay_s,
            retry_after=exc.retry_after,
        )

    # ------------------------------------------------- the stages' producing API
    async def decode_or_dead_letter(self, item: Incoming, cls: type[M]) -> M | None:
        """Decode a record; malformed input is dead-lettered at once (retrying cannot fix it)."""
        try:
            return decode(item.record.value, cls)
        except MessageDecodeError as exc:
            await self.dead_letter(item, exc, first_failure_at=time.time())
            return None

    async def emit(
        self,
        topic: Topic,
        message: Message,
        *,
        key: bytes | None,
        source: Incoming,
        partition: int | None = None,
    ) -> None:
        """Produce ``message`` downstream; the lifecycle awaits its ack before committing ``source``."""
        await self.emit_raw(
            topic,
            encode(message),
            key=key,
            trace_id=source.trace_id,
            attempt=1,
            source=source,
            partition=partition,
        )

    async def batch_partition(self, topic: Topic) -> int | None:
        """One partition of ``topic`` for all of a batch's outputs, the next one each call.

        For topics whose consumers need no per-key order (``processed.final``,
        ``storage.saved``: their sinks are idempotent per URL). Partitioned by key, a batch of
        20 pages lands in up to 12 partitions, so every produce request carries a few
        records per partition, and the broker writes (and an object-store log like Tansu's
        PUTs) one batch per partition. Kafka's own answer for keyless records is the sticky
        partitioner (KIP-480), which aiokafka lacks; this is it, per handled batch. The key
        stays on the record. None (partition by key) when the topic's metadata is unknown.
        """
        producer = self._producer
        if producer is None:
            return None
        partitions: list[int] = sorted(await producer.partitions_for(topic.name) or ())
        if not partitions:
            return None
        turn = self._sticky_turns.get(topic.name, random.randrange(len(partitions)))
        self._sticky_turns[topic.name] = turn + 1
        chosen: int = partitions[turn % len(partitions)]
        return chosen

    async def emit_raw(
        self,
        topic: Topic,
        value: bytes,
        *,
        key: bytes | None,
        trace_id: str,
        attempt: int,
        source: Incoming | None = None,
        partition: int | None = None,
    ) -> None:
        """Produce an encoded record. Inside ``handle_batch`` the ack is awaited (and the send
        retried) after the handler returns; a refused record dead-letters ``source``."""
        output = Output(topic.name, value, key, make_headers(trace_id, attempt), source, partition)
        outputs = batch_outputs.get()
        if outputs is None:
            await self._produce_now(output)
            return
        outputs.outputs.append(output)
        await self._send_with_retry(output, outputs)

    async def emit_and_wait(
        self, topic: Topic, messages: Sequence[tuple[Message, bytes | None]], *, source: Incoming
    ) -> None:
        """Produce ``(message, key)`` pairs and return once the broker acknowledged every one.

        For a stage that must record *that* its outputs were produced before it goes on; an
        unacknowledged record is sent again (never the handler re-run), a refused one raises
        ``ProduceRefused``.
        """
        headers = make_headers(source.trace_id, 1)
        outputs = BatchOutputs([Output(topic.name, encode(m), key, headers) for m, key in messages])
        for output in outputs.outputs:
            await self._send_with_retry(output, None)
        await self._settle_outputs(outputs)

    async def dead_letter(self, item: Incoming, exc: BaseException, *, first_failure_at: float) -> None:
        """Send the record to the stage's DLQ with the reason, and wait for the ack."""
        record = item.record
        letter, value = build_letter(
            record=record,
            stage=self.stage.value,
            exc=exc,
            attempt=item.attempt,
            first_failure_at=first_failure_at,
        )
        DEAD_LETTERS.labels(self.stage.value, letter.error_class).inc()
        log.warning(
            "dead-lettered: %s: %s",
            letter.error_class,
            letter.error_message,
            extra={"url": letter.url, "topic": record.topic, "offset": record.offset},
        )
        headers = make_headers(item.trace_id, item.attempt)
        try:
            await self._produce_now(Output(self.topics.dlq.name, value, record.key, headers))
        except ProduceRefused:
            # Even the cut letter was refused: send it without the payload copy rather than block.
            _letter, bare = build_letter(
                record=record, stage=self.stage.value, exc=exc, attempt=item.attempt,
                first_failure_at=first_failure_at, max_bytes=2 * LETTER_HEADROOM_BYTES,
            )  # fmt: skip
            await self._produce_now(Output(self.topics.dlq.name, bare, None, headers))
