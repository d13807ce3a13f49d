"""Producing a batch's outputs: the produce is retried, the handler never runs twice."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaTimeoutError,
    MessageSizeTooLargeError,
    RecordTooLargeError,
    UnknownError,
)

from workers.lifecycle import Incoming, Worker
from workers.lifecycle.letters import LETTER_HEADROOM_BYTES, build_letter
from workers.lifecycle.outputs import is_record_refusal
from workers.messages import DeadLetter, decode
from workers.settings import Settings, WorkerSettings
from workers.topics import PROCESS_FAST, Stage


def _item(offset: int, value: bytes = b"v") -> Incoming:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic="raw.page", partition=0, offset=offset, timestamp=0, timestamp_type=0, key=b"k",
        value=value, checksum=None, serialized_key_size=1, serialized_value_size=len(value), headers=(),
    )  # fmt: skip
    return Incoming(record, trace_id="trace", attempt=1)


class FakeProducer:
    """send() enqueues; each future fails with the next scripted error for its value, else succeeds."""

    def __init__(
        self, script: dict[bytes, list[BaseException]], *, refuse_send: set[bytes] | None = None
    ) -> None:
        self.script = script
        self.refuse_send = refuse_send or set()
        self.sent: list[tuple[str, bytes]] = []
        self.acked: list[tuple[str, bytes]] = []
        self.partitions: list[int | None] = []

    async def partitions_for(self, topic: str) -> set[int]:
        return {0, 1, 2}

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Any = None,
        partition: int | None = None,
    ) -> Any:
        self.partitions.append(partition)
        if value in self.refuse_send:
            raise MessageSizeTooLargeError("The message is 17000000 bytes when serialized")
        self.sent.append((topic, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        errors = self.script.get(value, [])
        if errors:
            future.set_exception(errors.pop(0))
        else:
            self.acked.append((topic, value))
            future.set_result(None)
        return future


class EmittingWorker(Worker):
    stage = Stage.ROUTER

    def __init__(self, producer: FakeProducer) -> None:
        super().__init__(
            Settings(worker=WorkerSettings(max_attempts=3, retry_base_delay_s=0.001, retry_max_delay_s=0.002))
        )
        self._producer = producer
        self.handled: list[int] = []
        self.letters: list[tuple[int, str]] = []

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            self.handled.append(item.record.offset)
            value = b"out-%d" % item.record.offset
            await self.emit_raw(PROCESS_FAST, value, key=None, trace_id="t", attempt=1, source=item)

    async def dead_letter(self, item: Incoming, exc: BaseException, *, first_failure_at: float) -> None:
        self.letters.append((item.record.offset, type(exc).__name__))


async def test_unacknowledged_produce_is_sent_again_without_rerunning_the_handler() -> None:
    producer = FakeProducer({b"out-1": [KafkaTimeoutError(), KafkaConnectionError("closed"), UnknownError()]})
    worker = EmittingWorker(producer)
    await worker._handle_with_policy([_item(1), _item(2)])
    assert worker.handled == [1, 2]  # each record handled (fetched) exactly once
    assert producer.sent.count((PROCESS_FAST.name, b"out-1")) == 4
    assert sorted(v for _, v in producer.acked) == [b"out-1", b"out-2"]
    assert worker.letters == []


async def test_record_the_broker_refuses_is_dead_lettered_and_the_rest_stands() -> None:
    producer = FakeProducer({b"out-2": [RecordTooLargeError()]}, refuse_send={b"out-3"})
    worker = EmittingWorker(producer)
    await worker._handle_with_policy([_item(1), _item(2), _item(3)])
    assert worker.handled == [1, 2, 3]
    assert sorted(worker.letters) == [(2, "ProduceRefused"), (3, "ProduceRefused")]
    assert [v for _, v in producer.acked] == [b"out-1"]


def test_only_record_level_errors_are_the_records_fault() -> None:
    assert is_record_refusal(MessageSizeTooLargeError())
    assert is_record_refusal(RecordTooLargeError())
    # Not flagged retriable by aiokafka, yet an outage: Tansu answers UnknownError while its storage is down.
    for outage in (KafkaTimeoutError(), UnknownError(), KafkaConnectionError("x")):
        assert not is_record_refusal(outage)


def test_a_letter_always_fits_and_says_when_its_payload_was_cut() -> None:
    big = b"x" * (3 * 1024 * 1024)
    letter, value = build_letter(
        record=_item(7, big).record, stage="router", exc=RecordTooLargeError(), attempt=1,
        first_failure_at=1.0, max_bytes=1024 * 1024,
    )  # fmt: skip
    assert len(value) <= 1024 * 1024 - LETTER_HEADROOM_BYTES
    decoded = decode(value, DeadLetter)
    assert decoded.payload_truncated and decoded.payload == big[: len(decoded.payload)]
    assert "truncated" in decoded.error_message and str(len(big)) in decoded.error_message
    small, _ = build_letter(
        record=_item(8, b"abc").record, stage="router", exc=KeyError("k"), attempt=2, first_failure_at=1.0
    )
    assert small.payload == b"abc" and not small.payload_truncated and letter.offset == 7


class BatchPartitionWorker(EmittingWorker):
    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        partition = await self.batch_partition(PROCESS_FAST)
        for item in batch:
            value = b"out-%d" % item.record.offset
            await self.emit_raw(
                PROCESS_FAST, value, key=b"k%d" % item.record.offset, trace_id="t", attempt=1,
                source=item, partition=partition,
            )  # fmt: skip


async def test_a_batch_goes_to_one_partition_and_the_next_batch_to_the_next() -> None:
    producer = FakeProducer({})
    worker = BatchPartitionWorker(producer)
    await worker._handle_with_policy([_item(0), _item(1), _item(2)])
    await worker._handle_with_policy([_item(3), _item(4)])
    first, second = producer.partitions[:3], producer.partitions[3:]
    assert len(set(first)) == 1 and len(set(second)) == 1
    assert first[0] is not None and second[0] == (first[0] + 1) % 3


async def test_outputs_without_a_partition_go_by_key() -> None:
    producer = FakeProducer({})
    await EmittingWorker(producer)._handle_with_policy([_item(0), _item(1)])
    assert producer.partitions == [None, None]
