"""The worker lifecycle's failure policy, with the Kafka side replaced by recorders."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aiokafka import ConsumerRecord

from workers.errors import DependencyUnavailable, ExtractionError, TransientFetchError
from workers.lifecycle import Incoming, Worker
from workers.settings import Settings, WorkerSettings
from workers.topics import Stage


def _item(offset: int) -> Incoming:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic="t", partition=0, offset=offset, timestamp=0, timestamp_type=0, key=None,
        value=b"v", checksum=None, serialized_key_size=0, serialized_value_size=1, headers=(),
    )  # fmt: skip
    return Incoming(record, trace_id="trace", attempt=1)


class ScriptedWorker(Worker):
    """handle_batch raises what the script says for each offset, call after call."""

    stage = Stage.ROUTER

    def __init__(self, script: dict[int, list[BaseException | None]]) -> None:
        super().__init__(
            Settings(worker=WorkerSettings(max_attempts=3, retry_base_delay_s=0.001, retry_max_delay_s=0.002))
        )
        self.script = script
        self.calls: list[list[int]] = []
        self.handled: list[int] = []
        self.letters: list[tuple[int, str]] = []

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        offsets = [i.record.offset for i in batch]
        self.calls.append(offsets)
        for offset in offsets:
            steps = self.script.get(offset, [])
            outcome = steps.pop(0) if steps else None
            if outcome is not None:
                raise outcome
        self.handled.extend(offsets)

    async def dead_letter(self, item: Incoming, exc: BaseException, *, first_failure_at: float) -> None:
        self.letters.append((item.record.offset, type(exc).__name__))


async def _run(worker: ScriptedWorker, offsets: list[int]) -> None:
    await worker._handle_with_policy([_item(o) for o in offsets])


async def test_poison_record_is_isolated_and_the_rest_of_the_batch_goes_on() -> None:
    worker = ScriptedWorker({2: [ExtractionError("bad page")] * 5})
    await _run(worker, [1, 2, 3])
    assert worker.letters == [(2, "ExtractionError")]
    assert sorted(worker.handled) == [1, 3]


async def test_retryable_error_is_retried_then_dead_lettered_after_max_attempts() -> None:
    worker = ScriptedWorker({7: [TransientFetchError("timeout")] * 10})
    await _run(worker, [7])
    assert worker.calls == [[7], [7], [7]]
    assert worker.letters == [(7, "TransientFetchError")]


async def test_retryable_error_that_passes_is_not_dead_lettered() -> None:
    worker = ScriptedWorker({7: [TransientFetchError("timeout"), None]})
    await _run(worker, [7])
    assert worker.letters == [] and worker.handled == [7]


async def test_outage_spends_no_attempt_and_dead_letters_nothing() -> None:
    outage: list[BaseException | None] = [DependencyUnavailable("postgres down")] * 6
    worker = ScriptedWorker({1: [*outage, None]})
    await _run(worker, [1, 2])
    assert worker.letters == []
    assert sorted(set(worker.handled)) == [1, 2]


async def test_unexpected_exception_is_treated_as_poison() -> None:
    errors: list[Any] = [KeyError("surprise")] * 3
    worker = ScriptedWorker({4: errors})
    await _run(worker, [4])
    assert worker.letters == [(4, "KeyError")]
