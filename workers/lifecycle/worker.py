"""The one worker lifecycle every daemon shares.

A ``Worker`` consumes its stage's input topic, hands records to ``handle_batch`` in
batches, and commits offsets **only after** everything a batch produced downstream was
acknowledged (or its database/object write finished) — at-least-once, said out loud.
Sinks are idempotent, so a redelivery after a crash is harmless.

Failure rules (see workers/errors.py):

* ``DependencyUnavailable`` (Kafka, PostgreSQL or S3 down): retried with capped backoff
  for as long as the worker runs; an outage spends no attempt and dead-letters nothing.
* any other failure of a multi-record batch: the batch is split and each record handled
  alone, so one bad record cannot hold back the others.
* a record alone: a ``RetryableError`` is retried up to ``max_attempts`` times, then
  dead-lettered; a ``PermanentError`` or an unexpected exception (a poison message) is
  dead-lettered at once, with its error class and message.

``stop()`` (also on SIGTERM) stops fetching, lets in-flight batches finish within
``drain_timeout_s``, commits what is done, flushes the producer and closes the clients.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import contextvars
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.abc import ConsumerRebalanceListener
from aiokafka.errors import KafkaError
from aiokafka.structs import OffsetAndMetadata

from workers.errors import DependencyUnavailable, MessageDecodeError, PermanentError, RetryableError
from workers.kafka import make_consumer, make_producer
from workers.lifecycle.offsets import OffsetTracker
from workers.lifecycle.retry import backoff_delay
from workers.messages import DeadLetter, Message, decode, encode, make_headers, peek, read_headers
from workers.observability.logs import trace_id_var
from workers.observability.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    DEAD_LETTERS,
    MESSAGES_CONSUMED,
    RETRIES,
    serve_metrics,
)
from workers.settings import Settings
from workers.topics import STAGES, Stage, Topic

__all__ = ["Incoming", "Worker"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)

# Acks of the records produced by the batch running in the current task.
_acks_var: contextvars.ContextVar[list[asyncio.Future[Any]] | None] = contextvars.ContextVar(
    "acks", default=None
)


@dataclass(slots=True)
class Incoming:
    """One consumed record with its trace id and delivery attempt (from Kafka headers)."""

    record: ConsumerRecord[bytes, bytes]
    trace_id: str
    attempt: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.worker._commit()
        self.worker._tracker.forget(set(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None


class Worker(abc.ABC):
    """Base class of the daemons: start/stop/run, ``async with``, idempotent ``stop()``."""

    stage: ClassVar[Stage]
    batch_size: int = 100
    """Records handed to one ``handle_batch`` call."""
    max_in_flight: int = 200
    """Records being handled at once (across concurrent batches)."""

    def __init__(self, settings: Settings, *, client_id: str | None = None) -> None:
        self.settings = settings
        self.topics = STAGES[self.stage]
        self._client_id = client_id or f"streamcrawl-{self.stage.value}"
        self._producer: AIOKafkaProducer | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._slot_free = asyncio.Event()
        self._started = False
        self._closed = False

    # ----------------------------------------------------------------- hooks
    async def on_start(self) -> None:  # noqa: B027 - optional hook
        """Open stage resources (HTTP client, browser, database pool)."""

    async def on_stop(self) -> None:  # noqa: B027 - optional hook
        """Close stage resources."""

    @abc.abstractmethod
    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        """Handle every record: ``await self.emit(...)`` its output or raise.

        Raising makes the lifecycle retry or split the batch (see the module doc);
        a record that alone still raises is dead-lettered.
        """

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        serve_metrics(self.settings.metrics, self.stage)
        self._producer = make_producer(self.settings.kafka, client_id=self._client_id)
        await self._producer.start()
        await self.on_start()
        self._consumer = make_consumer(
            self.settings.kafka,
            group_id=self.topics.group,
            client_id=self._client_id,
            max_poll_records=max(self.batch_size, 50),
        )
        self._consumer.subscribe([t.name for t in self.topics.inputs], listener=_Rebalance(self))
        await self._consumer.start()
        log.info(
            "started: %s -> %s",
            ", ".join(map(str, self.topics.inputs)),
            ", ".join(map(str, self.topics.outputs)),
        )

    async def stop(self) -> None:
        """Ask the worker to finish; safe to call any number of times, from a signal handler too."""
        self._stopping.set()
        self._slot_free.set()

    async def __aenter__(self) -> Worker:
        await self.start()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()
        await self.close()

    async def run(self) -> None:
        """Consume until ``stop()``; then drain, commit and close."""
        await self.start()
        committer = asyncio.create_task(self._commit_loop())
        try:
            await self._consume_loop()
        finally:
            committer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await committer
            await self._drain()
            await self.close()

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            await self._commit()
        finally:
            try:
                await self.on_stop()
            finally:
                if self._producer is not None:
                    with contextlib.suppress(KafkaError):
                        await self._producer.flush()
                    await self._producer.stop()
                if self._consumer is not None:
                    await self._consumer.stop()
                log.info("stopped")

    # ------------------------------------------------------------ consuming
    async def _consume_loop(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        while not self._stopping.is_set():
            free = self.max_in_flight - self._in_flight
            if free <= 0:
                self._slot_free.clear()
                await self._slot_free.wait()
                continue
            try:
                fetched = await consumer.getmany(timeout_ms=200, max_records=free)
            except KafkaError as exc:
                log.warning("fetch failed, retrying: %s", exc)
                await asyncio.sleep(1.0)
                continue
            for tp, records in fetched.items():
                self._record_lag(consumer, tp, records)
                for start in range(0, len(records), self.batch_size):
                    self._dispatch(records[start : start + self.batch_size])

    def _record_lag(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        high = consumer.highwater(tp)
        if high is not None and records:
            CONSUMER_LAG.labels(self.stage.value, tp.topic, str(tp.partition)).set(
                max(0, high - records[-1].offset - 1)
            )

    def _dispatch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        batch = []
        for record in records:
            trace, attempt = read_headers(record.headers)
            batch.append(Incoming(record, trace, attempt))
            self._tracker.dispatched(TopicPartition(record.topic, record.partition), record.offset)
        self._in_flight += len(batch)
        MESSAGES_CONSUMED.labels(self.stage.value).inc(len(batch))
        task = asyncio.create_task(self._run_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_batch(self, batch: list[Incoming]) -> None:
        started = time.perf_counter()
        try:
            await self._handle_with_policy(batch)
            for item in batch:
                self._tracker.done(item.tp, item.record.offset)
        except asyncio.CancelledError:
            raise  # shutting down mid-batch: not committed, redelivered later
        except Exception:
            log.exception("batch abandoned; its records will be redelivered after a restart")
        finally:
            BATCH_SECONDS.labels(self.stage.value).observe(time.perf_counter() - started)
            self._in_flight -= len(batch)
            self._slot_free.set()

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
                    await self._dead_letter_until_acked(item, exc, first_failure)
                    return
                RETRIES.labels(self.stage.value).inc()
                await asyncio.sleep(self._delay(attempt, exc))
            except Exception as exc:
                if not isinstance(exc, PermanentError):
                    log.exception("unexpected error handling a record; dead-lettering it")
                await self._dead_letter_until_acked(item, exc, first_failure or time.time())
                return

    async def _dead_letter_until_acked(
        self, item: Incoming, exc: BaseException, first_failure: float
    ) -> None:
        outages = 0
        while True:
            try:
                await self.dead_letter(item, exc, first_failure_at=first_failure)
                return
            except DependencyUnavailable as outage:
                outages += 1
                await self._wait_out_outage(outages, outage)

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

    async def _handle_and_ack(self, batch: Sequence[Incoming]) -> None:
        acks: list[asyncio.Future[Any]] = []
        acks_token = _acks_var.set(acks)
        trace_token = trace_id_var.set(batch[0].trace_id if len(batch) == 1 else "")
        try:
            await self.handle_batch(batch)
            if acks:
                try:
                    await asyncio.gather(*acks)
                except KafkaError as exc:
                    raise DependencyUnavailable(f"produce not acknowledged: {exc}") from exc
        finally:
            trace_id_var.reset(trace_token)
            _acks_var.reset(acks_token)

    async def decode_or_dead_letter(self, item: Incoming, cls: type[M]) -> M | None:
        """Decode a record; malformed input is dead-lettered at once (retrying cannot fix it)."""
        try:
            return decode(item.record.value, cls)
        except MessageDecodeError as exc:
            await self.dead_letter(item, exc, first_failure_at=time.time())
            return None

    # -------------------------------------------------------------- producing
    async def emit(self, topic: Topic, message: Message, *, key: bytes | None, source: Incoming) -> None:
        """Produce ``message`` downstream; the lifecycle awaits its ack before committing ``source``."""
        await self.emit_raw(topic, encode(message), key=key, trace_id=source.trace_id, attempt=1)

    async def emit_raw(
        self, topic: Topic, value: bytes, *, key: bytes | None, trace_id: str, attempt: int
    ) -> None:
        producer = self._producer
        assert producer is not None
        try:
            future = await producer.send(topic.name, value, key=key, headers=make_headers(trace_id, attempt))
        except KafkaError as exc:
            raise DependencyUnavailable(f"produce to {topic} failed: {exc}") from exc
        acks = _acks_var.get()
        if acks is None:
            await future
        else:
            acks.append(future)

    async def emit_and_wait(
        self, topic: Topic, messages: Sequence[tuple[Message, bytes | None]], *, source: Incoming
    ) -> None:
        """Produce ``(message, key)`` pairs and wait until the broker acknowledged every one.

        For a stage that must record durably *that* its outputs were produced (discovery marks
        admitted URLs published) before its input is committed.
        """
        producer = self._producer
        assert producer is not None
        headers = make_headers(source.trace_id, 1)
        try:
            futures = [
                await producer.send(topic.name, encode(message), key=key, headers=headers)
                for message, key in messages
            ]
            await asyncio.gather(*futures)
        except KafkaError as exc:
            raise DependencyUnavailable(f"produce to {topic} not acknowledged: {exc}") from exc

    async def dead_letter(self, item: Incoming, exc: BaseException, *, first_failure_at: float) -> None:
        """Send the record to the stage's DLQ with the reason, and wait for the ack."""
        record = item.record
        seen = peek(record.value)
        letter = DeadLetter(
            payload=record.value or b"",
            key=record.key,
            source_topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            stage=self.stage.value,
            error_class=type(exc).__name__,
            error_message=str(exc)[:2000] or type(exc).__name__,
            attempt=item.attempt,
            first_failure_at=first_failure_at,
            last_failure_at=time.time(),
            url=seen.get("url"),
            url_hash=seen.get("url_hash"),
            batch=seen.get("batch"),
            rank=seen.get("rank"),
        )
        DEAD_LETTERS.labels(self.stage.value, letter.error_class).inc()
        log.warning(
            "dead-lettered: %s: %s",
            letter.error_class,
            letter.error_message,
            extra={"url": letter.url, "topic": record.topic, "offset": record.offset},
        )
        producer = self._producer
        assert producer is not None
        try:
            future = await producer.send(
                self.topics.dlq.name,
                encode(letter),
                key=record.key,
                headers=make_headers(item.trace_id, item.attempt),
            )
            await future
        except KafkaError as exc2:
            raise DependencyUnavailable(f"dead-letter produce failed: {exc2}") from exc2

    # ------------------------------------------------------------- committing
    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.kafka.commit_interval_s)
            await self._commit()

    async def _commit(self) -> None:
        consumer = self._consumer
        if consumer is None:
            return
        positions = self._tracker.committable()
        if not positions:
            return
        try:
            await consumer.commit({tp: OffsetAndMetadata(pos, "") for tp, pos in positions.items()})
        except KafkaError as exc:
            log.warning("commit failed (will retry): %s", exc)
            self._tracker.uncommit(positions)

    async def _drain(self) -> None:
        if not self._tasks:
            return
        pending: set[asyncio.Task[None]] = set(self._tasks)
        _done, still = await asyncio.wait(pending, timeout=self.settings.worker.drain_timeout_s)
        for task in still:
            task.cancel()
        if still:
            log.warning("drain timeout: %d batches cancelled (redelivered later)", len(still))
            await asyncio.gather(*still, return_exceptions=True)
