"""Per-host spacing and concurrency, global concurrency, idle-host eviction."""

from __future__ import annotations

import asyncio
import itertools
import time

from workers.ingestor.politeness import HostScheduler


async def starts(scheduler: HostScheduler, host: str, n: int, *, delay: float | None = None) -> list[float]:
    times: list[float] = []

    async def one() -> None:
        async with scheduler.slot(host, delay=delay):
            times.append(time.monotonic())

    await asyncio.gather(*(one() for _ in range(n)))
    return sorted(times)


async def test_spacing_between_starts() -> None:
    scheduler = HostScheduler(concurrency=10, per_host_concurrency=10, per_host_delay_s=0.05)
    times = await starts(scheduler, "a", 4)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 0.045


async def test_other_hosts_are_not_held_up() -> None:
    scheduler = HostScheduler(concurrency=10, per_host_concurrency=1, per_host_delay_s=0.2)
    started = time.monotonic()
    await asyncio.gather(*(starts(scheduler, f"h{i}", 1) for i in range(5)))
    assert time.monotonic() - started < 0.15


async def test_per_call_delay_and_defer() -> None:
    scheduler = HostScheduler(concurrency=10, per_host_concurrency=10, per_host_delay_s=0.0, max_delay_s=1.0)
    async with scheduler.slot("a"):
        scheduler.defer("a", 0.1)
    started = time.monotonic()
    times = await starts(scheduler, "a", 2, delay=0.05)
    assert times[0] - started >= 0.09  # waited for the Retry-After
    assert times[1] - times[0] >= 0.045


async def test_per_host_and_global_concurrency() -> None:
    scheduler = HostScheduler(concurrency=3, per_host_concurrency=2, per_host_delay_s=0.0)
    active: dict[str, int] = {}
    peak = {"global": 0, "a": 0}

    async def one(host: str) -> None:
        async with scheduler.slot(host):
            active[host] = active.get(host, 0) + 1
            peak["global"] = max(peak["global"], sum(active.values()))
            peak["a"] = max(peak["a"], active.get("a", 0))
            await asyncio.sleep(0.01)
            active[host] -= 1

    await asyncio.gather(*(one("a") for _ in range(6)), *(one(f"h{i}") for i in range(6)))
    assert peak == {"global": 3, "a": 2}


async def test_idle_hosts_are_evicted() -> None:
    scheduler = HostScheduler(concurrency=100, per_host_concurrency=2, per_host_delay_s=0.5)
    await asyncio.gather(*(starts(scheduler, f"h{i}", 1) for i in range(200)))
    assert scheduler.hosts == 200  # still inside their delay
    for _ in range(100):  # gone once the delay has passed (a timer per idle host, no polling)
        await asyncio.sleep(0.05)
        if scheduler.hosts == 0:
            break
    assert scheduler.hosts == 0


async def test_state_kept_for_a_longer_crawl_delay() -> None:
    scheduler = HostScheduler(concurrency=10, per_host_concurrency=1, per_host_delay_s=0.0, max_delay_s=0.2)
    async with scheduler.slot("a"):  # e.g. the robots.txt fetch, before the delay is known
        pass
    started = time.monotonic()
    async with scheduler.slot("a", delay=0.1):
        assert time.monotonic() - started >= 0.09


async def test_cancelled_waiter_releases_everything() -> None:
    scheduler = HostScheduler(concurrency=1, per_host_concurrency=1, per_host_delay_s=0.0)
    async with scheduler.slot("a"):
        waiter = asyncio.ensure_future(starts(scheduler, "a", 1))
        await asyncio.sleep(0.01)
        waiter.cancel()
    assert len(await starts(scheduler, "a", 1)) == 1


async def test_two_hosts_on_one_address_share_its_spacing_and_places() -> None:
    scheduler = HostScheduler(
        concurrency=10, per_host_concurrency=2, per_host_delay_s=0.0, per_ip_concurrency=1, per_ip_delay_s=0.0
    )
    times: list[float] = []
    active = peak = 0

    async def one(host: str) -> None:
        nonlocal active, peak
        async with scheduler.slot(host, ip="10.0.0.1", ip_delay=0.05):
            times.append(time.monotonic())
            active += 1
            peak = max(peak, active)
            await asyncio.sleep(0.01)
            active -= 1

    await asyncio.gather(*(one(h) for h in ("a", "b") for _ in range(3)))
    gaps = [b - a for a, b in itertools.pairwise(sorted(times))]
    assert peak == 1 and min(gaps) >= 0.045  # one address: one rate, whatever the host name
    assert scheduler.addresses == 1


async def test_a_crawl_delayed_host_is_not_starved_by_a_busy_neighbour() -> None:
    # "slow" asks for 0.2 s on an address where "busy" never pauses: booking gives "slow" its
    # turns (0, 0.2, 0.4 s) instead of waiting for a quiet address that never comes.
    scheduler = HostScheduler(concurrency=10, per_host_concurrency=1, per_host_delay_s=0.0, max_delay_s=1.0)
    done = asyncio.Event()
    busy_starts = 0

    async def busy() -> None:
        nonlocal busy_starts
        while not done.is_set():
            async with scheduler.slot("busy", ip="10.0.0.1"):
                busy_starts += 1
                await asyncio.sleep(0.01)

    async def slow() -> float:
        began = time.monotonic()
        for _ in range(3):
            async with scheduler.slot("slow", delay=0.2, ip="10.0.0.1", ip_delay=0.2):
                pass
        done.set()
        return time.monotonic() - began

    elapsed, _ = await asyncio.wait_for(asyncio.gather(slow(), busy()), timeout=5.0)
    assert 0.35 <= elapsed < 1.0, elapsed
    assert busy_starts >= 20  # and the neighbour never waited for the Crawl-delay


async def test_delayed_hosts_on_one_address_take_turns() -> None:
    # A short and a long Crawl-delay on one address: the long one still gets its turns.
    scheduler = HostScheduler(concurrency=10, per_host_concurrency=1, per_host_delay_s=0.0, max_delay_s=1.0)
    starts_of: dict[str, list[float]] = {"long": [], "short": []}

    async def run(host: str, delay: float, n: int) -> None:
        for _ in range(n):
            async with scheduler.slot(host, delay=delay, ip="10.0.0.1", ip_delay=delay):
                starts_of[host].append(time.monotonic())

    await asyncio.wait_for(asyncio.gather(run("long", 0.15, 3), run("short", 0.02, 60)), timeout=8.0)
    assert len(starts_of["long"]) == 3
    every = sorted(starts_of["long"] + starts_of["short"])
    assert min(b - a for a, b in itertools.pairwise(every)) >= 0.015  # still one rate per address
    assert starts_of["long"][-1] - every[0] < 0.8  # not after all of "short" (about 1.2 s)


async def test_other_addresses_are_not_held_up() -> None:
    scheduler = HostScheduler(
        concurrency=10, per_host_concurrency=2, per_host_delay_s=0.0, per_ip_concurrency=1
    )
    started = time.monotonic()

    async def one(i: int) -> None:
        async with scheduler.slot(f"h{i}", ip=f"10.0.0.{i}", ip_delay=0.5):
            pass

    await asyncio.gather(*(one(i) for i in range(5)))
    assert time.monotonic() - started < 0.15
