"""The worker's self-check: ticks the health state, judges liveness, exports record age.

Runs beside the consume loop. Every second it ticks ``HealthState`` (the probe thread and
the watchdog read the tick); every few seconds it builds a liveness ``Sample`` from what
the consumer knows (held partitions, fetch high watermarks and their freshness, finished
records), records the verdict for ``/healthz`` and ``/readyz``, exports the age of the
oldest uncommitted record, and makes the worker give up when the verdict is unhealthy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import TYPE_CHECKING

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from workers.lifecycle.liveness import Liveness, Sample
from workers.observability.metrics import OLDEST_UNCONSUMED_AGE

if TYPE_CHECKING:
    from workers.lifecycle.worker import Worker

__all__ = ["Monitor", "group_members"]

log = logging.getLogger("workers.lifecycle.worker")

_JUDGE_EVERY_S = 5.0
_GROUP_CHECK_EVERY_S = 30.0


async def group_members(worker: Worker) -> int | None:
    """Members of the worker's consumer group, or None when the broker cannot say."""
    admin = worker._admin
    if admin is None:
        return None
    try:
        responses = await asyncio.wait_for(admin.describe_consumer_groups([worker.topics.group]), 10.0)
    except (KafkaError, OSError, TimeoutError):
        return None
    for response in responses:
        for group in response.groups:
            # DescribeGroups: (error_code, group_id, state, protocol_type, protocol, members, ...)
            if group[1] == worker.topics.group and group[0] == 0:
                return len(group[5])
    return None


class Monitor:
    def __init__(self, worker: Worker, liveness: Liveness) -> None:
        self.worker = worker
        self.liveness = liveness
        self._saturated = False
        self._group_checked_at = 0.0
        self._last_finished = -1

    async def run(self) -> None:
        next_judgement = time.monotonic() + 1.0
        while True:
            self.worker.health.tick()
            if time.monotonic() >= next_judgement:
                next_judgement = time.monotonic() + _JUDGE_EVERY_S
                try:
                    await self.judge()
                except (KafkaError, OSError, AssertionError, KeyError, ValueError):
                    log.exception("liveness check failed (will try again)")
            await asyncio.sleep(1.0)

    def _held(self) -> list[TopicPartition]:
        consumer = self.worker._consumer
        if consumer is None:
            return []
        return sorted(consumer.assignment() & self.worker._owned)

    async def judge(self) -> None:
        worker = self.worker
        consumer = worker._consumer
        held = self._held()
        now_ms = time.time() * 1000
        fresh_ms = min(60.0, worker.settings.worker.stall_exit_s / 2) * 1000
        lag = 0
        fresh = True
        for tp in held:
            assert consumer is not None
            high = consumer.highwater(tp)
            part = worker._tracker.state(tp)
            nxt = (
                part.next_offset
                if part is not None and part.next_offset is not None
                else worker._committed.get(tp)
            )
            if high is not None and nxt is not None:
                lag += max(0, high - nxt)
            with contextlib.suppress(AssertionError):  # revoked between the two calls
                polled = consumer.last_poll_timestamp(tp)
                fresh = fresh and polled is not None and now_ms - polled < fresh_ms
            self._settle_isolation(tp, high, nxt)
        if held:
            self._saturated = False
        elif time.monotonic() - self._group_checked_at > _GROUP_CHECK_EVERY_S:
            self._group_checked_at = time.monotonic()
            members = await group_members(worker)
            self._saturated = members is not None and members >= self._subscribed_partitions()
        sample = Sample(
            now=time.monotonic(),
            partitions=len(held),
            finished=worker._tracker.finished,
            in_flight=worker._tracker.in_flight(),
            lag=lag,
            fetch_fresh=fresh and bool(held),
            group_saturated=self._saturated,
        )
        verdict = self.liveness.observe(sample)
        worker.health.update(
            healthy=verdict.healthy,
            ready=verdict.ready,
            reason=verdict.reason,
            partitions=len(held),
            in_flight=sample.in_flight,
            lag=lag,
            progress=sample.finished != self._last_finished or (sample.in_flight == 0 and lag == 0),
        )
        self._last_finished = sample.finished
        self._export_age(held, now_ms)
        if not verdict.healthy:
            await worker.give_up(verdict.reason)

    def _settle_isolation(self, tp: TopicPartition, high: int | None, nxt: int | None) -> None:
        """An isolation whose suspects cannot arrive any more (none left below ``until``) ends."""
        iso = self.worker._isolations.get(tp)
        if iso is None or high is None:
            return
        iso.cut(high)
        if nxt is not None and nxt >= iso.until:
            iso.close()

    def _subscribed_partitions(self) -> int:
        """Partitions of every topic the worker subscribes to (what the group splits)."""
        consumer = self.worker._consumer
        if consumer is None:
            return 1
        return sum(len(consumer.partitions_for_topic(t) or ()) for t in consumer.subscription()) or 1

    def _export_age(self, held: list[TopicPartition], now_ms: float) -> None:
        oldest: dict[str, int] = {}
        for tp in held:
            part = self.worker._tracker.state(tp)
            ts = part.oldest_pending_timestamp() if part is not None else None
            if ts is not None and (tp.topic not in oldest or ts < oldest[tp.topic]):
                oldest[tp.topic] = ts
        for topic in self.worker._input_topics():
            ts = oldest.get(topic.name)
            age = max(0.0, (now_ms - ts) / 1000) if ts is not None else 0.0
            OLDEST_UNCONSUMED_AGE.labels(self.worker.topics.group, topic.name).set(age)
