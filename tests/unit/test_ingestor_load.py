"""The adaptive global limit: FIFO places, resized by measured event-loop lag."""

from __future__ import annotations

import asyncio
import time

from workers.ingestor.load import AdaptiveLimit, LoadGovernor


async def test_limit_is_fifo_and_resizable() -> None:
    limit = AdaptiveLimit(2)
    order: list[int] = []

    async def one(i: int, gate: asyncio.Event) -> None:
        await limit.acquire()
        order.append(i)
        await gate.wait()
        limit.release()

    gate = asyncio.Event()
    tasks = [asyncio.ensure_future(one(i, gate)) for i in range(6)]
    await asyncio.sleep(0.01)
    assert order == [0, 1] and limit.used == 2 and limit.waiting == 4
    limit.limit = 4  # growing admits waiters at once, in order
    await asyncio.sleep(0.01)
    assert order == [0, 1, 2, 3]
    limit.limit = 1  # shrinking takes effect as places are released
    gate.set()
    await asyncio.gather(*tasks)
    assert order == list(range(6)) and limit.used == 0


async def test_cancelled_waiter_leaves_no_trace() -> None:
    limit = AdaptiveLimit(1)
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0.01)
    waiter.cancel()
    await asyncio.sleep(0)
    limit.release()
    assert limit.used == 0 and limit.waiting == 0


async def test_waiter_cancelled_and_skipped_by_a_release_before_it_runs_stays_cancelled() -> None:
    # A fetch cancelled while it waits for a place (its partition went to another consumer)
    # must end cancelled, not with an error the lifecycle would dead-letter the URL for.
    limit = AdaptiveLimit(1)
    await limit.acquire()
    waiter = asyncio.ensure_future(limit.acquire())
    await asyncio.sleep(0)
    waiter.cancel()
    limit.release()  # in the same turn of the loop: the cancelled waiter is skipped and popped
    results = await asyncio.gather(waiter, return_exceptions=True)
    assert isinstance(results[0], asyncio.CancelledError)
    assert limit.used == 0 and limit.waiting == 0
    await limit.acquire()  # the place is free
    assert limit.used == 1


async def test_governor_shrinks_when_the_loop_lags_and_grows_back_when_busy_but_idle() -> None:
    changes: list[tuple[int, float]] = []
    governor = LoadGovernor(
        maximum=100,
        minimum=10,
        target_lag_s=0.05,
        interval_s=0.01,
        adjust_s=0.05,
        on_adjust=lambda limit, lag: changes.append((limit, lag)),
    )
    governor.start()
    try:
        started = asyncio.get_running_loop().time()
        for _ in range(6):  # a starved loop: 0.1 s blocks between short breathers
            time.sleep(0.1)  # noqa: ASYNC251 - blocking the loop is the point
            await asyncio.sleep(0.02)
        assert governor.limit.limit < 50 and changes and changes[0][1] > 0.05
        assert governor.overloaded_since(started)
        low = governor.limit.limit
        for _ in range(low):  # demand: every place taken
            await governor.limit.acquire()
        await asyncio.sleep(0.5)  # a responsive loop again
        assert governor.limit.limit > low
    finally:
        governor.stop()
    assert not governor.overloaded_since(asyncio.get_running_loop().time())
