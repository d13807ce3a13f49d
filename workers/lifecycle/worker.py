"""The one worker lifecycle every daemon shares.

A ``Worker`` consumes its stage's input topic, hands records to ``handle_batch`` in
batches, and commits offsets **only after** everything a batch produced downstream was
acknowledged (or its database/object write finished) — at-least-once, said out loud.
Sinks are idempotent, so a redelivery after a crash is harmless.

What happens on failure is the policy of workers/lifecycle/policy.py: outages are waited
out, an unacknowledged produce is sent again without re-running the handler, a refused
record is dead-lettered, a failing batch is split and its poison record dead-lettered.
Partitions change hands as workers/lifecycle/ownership.py describes; a record that kills
the process is found and, after ``STREAMCRAWL_WORKER_MAX_CRASHES`` deaths, dead-lettered
(workers/lifecycle/crashes.py). A worker that holds nothing or makes no progress for too
long exits non-zero (workers/lifecycle/liveness.py), and says why on ``/healthz``.

``stop()`` (also on SIGTERM) stops fetching, lets in-flight batches finish within
``drain_timeout_s``, commits what is done, releases its leases, flushes the producer and
closes the clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, ClassVar, TypeVar

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from workers.kafka import make_admin, make_consumer, make_producer
from workers.lifecycle.crashes import CrashMarkers
from workers.lifecycle.isolation import Gate
from workers.lifecycle.liveness import Liveness
from workers.lifecycle.monitor import Monitor
from workers.lifecycle.offsets import OffsetTracker
from workers.lifecycle.ownership import PartitionOwnership, RebalanceListener
from workers.lifecycle.policy import FailurePolicy
from workers.messages import Message, read_headers
from workers.observability.health import HealthState
from workers.observability.metrics import (
    BATCH_SECONDS,
    CONSUMER_LAG,
    MESSAGES_CONSUMED,
    TOPIC_RETENTION,
    serve_metrics,
)
from workers.settings import Settings
from workers.topics import STAGES, Stage, Topic

__all__ = ["EXIT_UNHEALTHY", "Incoming", "Worker"]

log = logging.getLogger(__name__)
M = TypeVar("M", bound=Message)

EXIT_UNHEALTHY = 75
"""Exit status of a worker that gave up because it was useless (EX_TEMPFAIL: restart me)."""
_CLOSE_COMMIT_S = 3.0
_CLOSE_STEP_S = 2.0


@dataclass(slots=True)
class Incoming:
    """One consumed record with its trace id and delivery attempt (from Kafka headers)."""

    record: ConsumerRecord[bytes, bytes]
    trace_id: str
    attempt: int

    @property
    def tp(self) -> TopicPartition:
        return TopicPartition(self.record.topic, self.record.partition)


class Worker(FailurePolicy, PartitionOwnership):
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
        self._sticky_turns: dict[str, int] = {}
        self._consumer: AIOKafkaConsumer | None = None
        self._admin: AIOKafkaAdminClient | None = None
        self._markers: CrashMarkers | None = None
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._in_flight = 0
        self._slot_free = asyncio.Event()
        self._gate = Gate()
        self._started = False
        self._stage_started = False
        self._closed = False
        self.health = HealthState(stage=self.stage.value)
        self.exit_code = 0
        """Non-zero once the worker stopped itself because it was unhealthy."""
        self._init_ownership()

    # ----------------------------------------------------------------- hooks
    async def on_start(self) -> None:
        """Open stage resources (HTTP client, browser, database pool)."""

    async def on_stop(self) -> None:
        """Close stage resources."""

    # -------------------------------------------------------------- lifecycle
    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        serve_metrics(self.settings.metrics, self.stage, self.health)
        for topic in self._input_topics():
            TOPIC_RETENTION.labels(topic.name).set(topic.retention_hours * 3600)
        self._producer = make_producer(self.settings.kafka, client_id=self._client_id)
        await self._producer.start()
        await self.on_start()
        self._stage_started = True
        self._admin = make_admin(self.settings.kafka, client_id=f"{self._client_id}-admin")
        await self._admin.start()
        self._markers = CrashMarkers(self.settings.kafka, self.topics, client_id=self._client_id)
        await self._markers.start()
        self._consumer = make_consumer(
            self.settings.kafka,
            group_id=self.topics.group,
            client_id=self._client_id,
            max_poll_records=max(self.batch_size, 50),
        )
        inputs = self._input_topics()
        self._consumer.subscribe([t.name for t in inputs], listener=RebalanceListener(self))
        await self._consumer.start()
        log.info("started: %s -> %s", ", ".join(map(str, inputs)), ", ".join(map(str, self.topics.outputs)))

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
        if not await self._start_unless_stopped():
            await self.close()
            return
        monitor = Monitor(self, Liveness(
            no_partitions_s=self.settings.worker.no_partitions_exit_s,
            stall_s=self.settings.worker.stall_exit_s,
            started_at=time.monotonic(),
        ))  # fmt: skip
        helpers = [asyncio.create_task(self._commit_loop()), asyncio.create_task(monitor.run())]
        try:
            await self._consume_loop()
        finally:
            for task in helpers:
                task.cancel()
            await asyncio.gather(*helpers, return_exceptions=True)
            await self._drain()
            await self.close()

    async def _start_unless_stopped(self) -> bool:
        """``start()``, given up at once when a stop is asked meanwhile (starting can take a
        while on a busy machine; supervisord's stop or the parent's death must not wait)."""
        starting = asyncio.create_task(self.start())
        stopped = asyncio.create_task(self._stopping.wait())
        await asyncio.wait({starting, stopped}, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if not starting.done():
            starting.cancel()
            await asyncio.gather(starting, return_exceptions=True)
            log.info("stopped while starting")
            return False
        starting.result()  # a failed start raises here
        return True

    async def close(self) -> None:
        """Commit, release the leases, close the clients — within a few seconds, whatever hangs.

        The drain already took up to ``drain_timeout_s`` of supervisord's stopwaitsecs; a
        broker that does not answer (or a group rebalancing because every member is leaving
        at once) must not hold the exit up for a request timeout per call.
        """
        if self._closed:
            return
        self._closed = True
        try:
            # A worker giving up (stuck records, silent broker) keeps its leases: whatever it
            # still had in flight is a suspect for the next owner.
            if await self._commit(timeout_s=_CLOSE_COMMIT_S) and not self.exit_code:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release(set(self._owned), force=True), _CLOSE_COMMIT_S)
        finally:
            try:
                if self._stage_started:
                    await self.on_stop()
            finally:
                await self._close_clients()
                log.info("stopped")

    async def _close_clients(self) -> None:
        steps: list[Any] = []
        if self._producer is not None:
            steps += [self._producer.flush(), self._producer.stop()]
        if self._markers is not None:
            steps.append(self._markers.stop())
        if self._admin is not None:
            steps.append(self._admin.close())
        if self._consumer is not None:
            steps.append(self._consumer.stop())  # waits for a rebalance in progress: bounded
        for step in steps:
            with contextlib.suppress(KafkaError, TimeoutError, OSError):
                await asyncio.wait_for(step, _CLOSE_STEP_S)

    def _input_topics(self) -> tuple[Topic, ...]:
        """The topics this stage consumes (one group, one subscription): its input plus any
        extra inputs (discovery also reads raw.sitemap and three dead-letter topics)."""
        return self.topics.inputs

    async def give_up(self, reason: str) -> None:
        """Stop with ``EXIT_UNHEALTHY``: supervisord (or Kubernetes) starts a fresh process."""
        if self.exit_code == 0:
            log.error("unhealthy, exiting to be restarted: %s", reason)
            self.exit_code = EXIT_UNHEALTHY
        await self.stop()

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
            fetched = {tp: recs for tp, recs in fetched.items() if recs and tp in self._owned}
            if not fetched or not await self._ensure_leases(fetched):
                continue
            for tp, records in fetched.items():
                if tp in self._owned:  # still ours after the lease write
                    self._record_lag(consumer, tp, records)
                    self._route(tp, records)

    def _record_lag(
        self, consumer: AIOKafkaConsumer, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]
    ) -> None:
        high = consumer.highwater(tp)
        if high is not None and records:
            CONSUMER_LAG.labels(self.stage.value, tp.topic, str(tp.partition)).set(
                max(0, high - records[-1].offset - 1)
            )
            iso = self._isolations.get(tp)
            if iso is not None:
                iso.cut(high)  # records written after the previous owner died cannot be suspects
            until = self._rounds.get(tp)
            if until is not None and high < until:
                self._rounds[tp] = high  # likewise: the recovery round ends at the log's end

    def _incoming(self, record: ConsumerRecord[bytes, bytes]) -> Incoming:
        trace, attempt = read_headers(record.headers)
        self._tracker.dispatched(
            TopicPartition(record.topic, record.partition), record.offset, record.timestamp
        )
        return Incoming(record, trace, attempt)

    def _route(self, tp: TopicPartition, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """Suspects of a dead owner to the partition's isolation, the rest in batches."""
        iso = self._isolations.get(tp)
        normal: list[Incoming] = []
        for record in records:
            item = self._incoming(record)
            self._in_flight += 1
            if iso is not None and record.offset < iso.until:
                iso.push(item, last=record.offset >= iso.until - 1)
            else:
                normal.append(item)
        if iso is not None and records[-1].offset >= iso.until - 1:
            iso.close()
        MESSAGES_CONSUMED.labels(self.stage.value).inc(len(records))
        for start in range(0, len(normal), self.batch_size):
            chunk = normal[start : start + self.batch_size]
            self._spawn(tp, self._run_batch(chunk), records=len(chunk))

    def _spawn(self, tp: TopicPartition, coro: Any, *, records: int = 0) -> None:
        """Run ``coro`` as a task of ``tp``; ``records`` leave the in-flight count when it ends."""
        task: asyncio.Task[None] = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        if records:
            # A done callback, not a finally: a task cancelled before it ran has no finally.
            task.add_done_callback(lambda _task: self._finished(records))
        self._track_task(tp, task)

    def _finished(self, records: int) -> None:
        self._in_flight -= records
        self._slot_free.set()
        self._progressed.set()

    async def _run_batch(self, batch: list[Incoming]) -> None:
        async with self._gate.shared():
            await self._execute(batch)

    async def _execute(self, batch: list[Incoming]) -> None:
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

    # ------------------------------------------------------------- committing
    async def _commit_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.kafka.commit_interval_s)
            await self._commit()

    async def _drain(self) -> None:
        if not self._tasks:
            return
        for iso in list(self._isolations.values()):
            self._abandon(iso)
        pending: set[asyncio.Task[None]] = set(self._tasks)
        _done, still = await asyncio.wait(pending, timeout=self.settings.worker.drain_timeout_s)
        for task in still:
            task.cancel()
        if still:
            log.warning("drain timeout: %d batches cancelled (redelivered later)", len(still))
            await asyncio.gather(*still, return_exceptions=True)
