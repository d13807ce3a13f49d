"""Crash attribution: markers, what a new owner concludes from them, isolation and the gate."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import ConsumerRecord, TopicPartition

from workers.lifecycle import Incoming, Worker
from workers.lifecycle.crashes import ROUND, Recovery, decode_isolation, encode_isolation
from workers.lifecycle.isolation import Gate, Isolation
from workers.settings import Settings, WorkerSettings
from workers.topics import Stage

TP = TopicPartition("raw.page", 0)


def test_isolation_marker_round_trip() -> None:
    for offset, crashes in ((0, 0), (0, 5), (123_456_789_012, 2), (7, ROUND)):
        assert decode_isolation(encode_isolation(offset, crashes)) == (offset, crashes)
    assert decode_isolation(None) is None and decode_isolation(0) is None
    assert decode_isolation(encode_isolation(3, 500)) == (3, ROUND)  # capped, never overflows into the offset


def test_clean_hand_over_leaves_no_suspects() -> None:
    assert not Recovery(committed=100, lease=100).unclean
    assert Recovery(committed=100, lease=100, isolated=(100, 1)).suspect is None
    assert Recovery(committed=None, lease=None).suspects_until is None


def test_a_dead_owner_leaves_its_lease_range_as_suspects() -> None:
    r = Recovery(committed=100, lease=350)
    assert r.unclean and r.suspects_until == 350 and r.suspect is None  # first death: nobody blamed
    assert not r.isolate  # ... and its suspects are handled again as usual, in a recovery round
    r = Recovery(committed=None, lease=40)  # died before its first commit
    assert r.suspects_until == 40


def test_a_death_during_a_recovery_round_isolates_the_suspects() -> None:
    r = Recovery(committed=200, lease=500, isolated=(350, ROUND))  # the round ran to 350, commit at 200
    assert r.in_round and r.isolate and r.suspect is None  # one at a time, nobody blamed yet
    # A round whose end the commit passed is over (its marker not cleared yet): a first death again.
    r = Recovery(committed=360, lease=500, isolated=(350, ROUND))
    assert not r.in_round and not r.isolate and r.suspect is None
    # A record marker means isolation was under way: isolate again, blaming that record.
    r = Recovery(committed=100, lease=350, isolated=(120, 0))
    assert r.isolate and not r.in_round


def test_the_record_isolated_at_death_is_blamed_once_more() -> None:
    assert Recovery(committed=100, lease=350, isolated=(120, 0)).suspect == (120, 1)
    assert Recovery(committed=100, lease=350, isolated=(100, 2)).suspect == (100, 3)
    # A marker left by a record finished since (behind the commit) blames nobody.
    assert Recovery(committed=100, lease=350, isolated=(99, 2)).suspect is None


async def test_isolation_hands_out_suspects_in_order_and_ends_when_all_arrived() -> None:
    iso: Isolation[int] = Isolation(until=13, suspect=(11, 2))
    iso.push(10, last=False)
    got = [await iso.next()]
    waiter = asyncio.ensure_future(iso.next())
    await asyncio.sleep(0)
    assert not waiter.done()  # waits for the next suspect to be fetched
    iso.push(11, last=False)
    got.append(await waiter)
    iso.cut(12)  # the log ended at 12 when the partition was taken over
    iso.push(12, last=True)
    got.append(await iso.next())
    assert got == [10, 11, 12] and await iso.next() is None
    assert iso.deaths_of(11) == 2 and iso.deaths_of(10) == 0 and iso.until == 12


async def test_exclusive_waits_for_shared_holders_and_blocks_new_ones() -> None:
    gate = Gate()
    events: list[str] = []
    release = asyncio.Event()

    async def shared(name: str, hold: asyncio.Event | None = None) -> None:
        async with gate.shared():
            events.append(f"{name}+")
            if hold is not None:
                await hold.wait()
            events.append(f"{name}-")

    async def exclusive() -> None:
        async with gate.exclusive():
            events.append("X+")
            await asyncio.sleep(0.01)
            events.append("X-")

    first = asyncio.ensure_future(shared("a", release))
    await asyncio.sleep(0)
    solo = asyncio.ensure_future(exclusive())
    await asyncio.sleep(0)
    late = asyncio.ensure_future(shared("b"))
    await asyncio.sleep(0.01)
    assert events == ["a+"] and gate.closed
    release.set()
    await asyncio.gather(first, solo, late)
    assert events == ["a+", "a-", "X+", "X-", "b+", "b-"]


def _item(offset: int) -> Incoming:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic=TP.topic, partition=0, offset=offset, timestamp=0, timestamp_type=0, key=None,
        value=b"v", checksum=None, serialized_key_size=0, serialized_value_size=1, headers=(),
    )  # fmt: skip
    return Incoming(record, trace_id="trace", attempt=1)


class Markers:
    def __init__(self) -> None:
        self.marks: list[tuple[int, int]] = []

    async def mark_isolated(self, tp: TopicPartition, offset: int, crashes: int) -> None:
        self.marks.append((offset, crashes))


class RecordingWorker(Worker):
    stage = Stage.FAST_EXTRACTOR

    def __init__(self) -> None:
        super().__init__(Settings(worker=WorkerSettings(max_crashes=3)))
        self.handled: list[tuple[int, bool]] = []
        self.letters: list[tuple[int, str, int]] = []
        self._markers = Markers()  # type: ignore[assignment]

    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            self.handled.append((item.record.offset, self._gate.closed))

    async def dead_letter(self, item: Incoming, exc: BaseException, *, first_failure_at: float) -> None:
        self.letters.append((item.record.offset, type(exc).__name__, item.attempt))


async def test_suspects_one_at_a_time_the_blamed_alone_and_a_repeat_killer_dead_lettered() -> None:
    worker = RecordingWorker()
    iso: Isolation[Incoming] = Isolation(until=4, suspect=(1, 1))
    for offset in range(4):
        worker._tracker.dispatched(TP, offset)
        worker._in_flight += 1
        iso.push(_item(offset), last=offset == 3)
    await worker._isolate(TP, iso)
    # Offset 1 was blamed for one death: handled with the gate closed (nothing else running).
    assert worker.handled == [(0, False), (1, True), (2, False), (3, False)]
    assert worker._markers.marks == [(0, 0), (1, 1), (2, 0), (3, 0)]  # type: ignore[union-attr]
    assert worker._tracker.committable() == {TP: 4} and worker._in_flight == 0

    killer = RecordingWorker()
    iso = Isolation(until=2, suspect=(0, 3))
    for offset in range(2):
        killer._tracker.dispatched(TP, offset)
        killer._in_flight += 1
        iso.push(_item(offset), last=offset == 1)
    await killer._isolate(TP, iso)
    assert killer.letters == [(0, "WorkerCrashed", 3)]  # never handled again
    assert killer.handled == [(1, False)] and killer._tracker.committable() == {TP: 2}
