"""Failure drills on real services, each ending with every URL accounted for.

The four hot-path daemons run as subprocesses, restarted whenever they exit (as under
supervisord), against a broker whose log lives in S3 (the embedded stack's default).
Each drill breaks something while the demo web is being crawled, then requires (see
tests/helpers/accounting.py): every URL stored or dead-lettered for a stated reason, as
its kind demands; 0 lost; one row per stored URL; exactly the objects the rows reference.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.helpers.accounting import assert_accounted
from tests.helpers.drills import Drill, DrillServices, drill_urls
from workers.demoweb import DemoWeb
from workers.ledger import BatchProgress
from workers.lifecycle.worker import EXIT_UNHEALTHY
from workers.stack.component import Outcome

pytestmark = pytest.mark.integration

OUTAGE_S = 30.0
# The four daemons of the first build's hot path, each killed in the SIGKILL drill.
KILLED = ("storage_writer", "ingestor", "router", "fast_extractor")


@pytest.fixture(scope="module")
def services() -> Iterator[DrillServices]:
    # Not under pytest's tmp dir: PostgreSQL runs as `postgres` and must traverse the path.
    base = Path(tempfile.mkdtemp(prefix="streamcrawl-drills-"))
    base.chmod(0o711)
    found = DrillServices.start(base)
    try:
        yield found
    finally:
        found.stop()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
async def web() -> AsyncIterator[DemoWeb]:
    async with DemoWeb(port=0, processes=1) as server:
        yield server


@pytest.fixture
async def drill(
    services: DrillServices, request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[Drill]:
    found = await services.drill(request.node.name.removeprefix("test_")[:12].replace("_", "-"))
    found.start_pipeline(tmp_path / "logs")
    try:
        yield found
    finally:
        found.close()


async def _finish(drill: Drill, task: asyncio.Task[BatchProgress]) -> BatchProgress:
    progress = await task
    assert progress is not None
    return progress


async def test_sigkill_of_every_daemon_mid_crawl_several_rounds(drill: Drill, web: DemoWeb) -> None:
    urls = drill_urls(web, hosts=12, per_host=10)
    expected_rows = sum(u.expected in ("stored", "skipped") for u in urls)
    task = drill.crawl(urls)
    assert drill.pipeline is not None
    kills: list[tuple[str, int]] = []
    rounds = [stage for _ in range(2) for stage in KILLED]
    for i, stage in enumerate(rounds):
        stored = await drill.wait_rows(int(expected_rows * (i + 1) / (len(rounds) + 2)))
        assert stored < expected_rows and not task.done(), "each kill must land mid-crawl"
        # SIGKILL: no drain, no commit; the supervisor restarts it. Rows arrive in bursts, so
        # two kills of a stage can fall due together: kill() waits for its restart between.
        await asyncio.to_thread(drill.pipeline.kill, stage)
        kills.append((stage, stored))
    progress = await _finish(drill, task)
    counts = await assert_accounted(
        drill.settings, urls, progress, batch=drill.batch, context=(kills, drill.logs())
    )
    assert all(drill.pipeline.exits[s].count(-9) == 2 for s in KILLED), drill.pipeline.exits
    print("sigkill drill", kills, counts)


async def test_postgresql_down_for_30_s(drill: Drill, web: DemoWeb, services: DrillServices) -> None:
    urls = drill_urls(web)
    task = drill.crawl(urls)
    await drill.wait_rows(5)
    await asyncio.to_thread(services.postgres.stop)
    started = time.monotonic()
    try:
        await asyncio.sleep(OUTAGE_S)  # the outage itself is the drill
        assert not task.done()
    finally:
        await asyncio.to_thread(services.postgres.ensure_running)
    progress = await _finish(drill, task)
    counts = await assert_accounted(drill.settings, urls, progress, batch=drill.batch, context=drill.logs())
    print("postgres drill", round(time.monotonic() - started, 1), counts)


async def test_s3_down_for_30_s_with_the_broker_log_in_s3(
    drill: Drill, web: DemoWeb, services: DrillServices
) -> None:
    urls = drill_urls(web)
    task = drill.crawl(urls)
    await drill.wait_rows(5)
    await asyncio.to_thread(services.s3.stop)
    try:
        await asyncio.sleep(OUTAGE_S)
    finally:
        await asyncio.to_thread(services.s3.ensure_running)
    # What `streamcrawl up` does next: a broker that stopped serving is restarted.
    outcome = await asyncio.to_thread(drill.broker.ensure_running)
    progress = await _finish(drill, task)
    counts = await assert_accounted(drill.settings, urls, progress, batch=drill.batch, context=drill.logs())
    assert drill.pipeline is not None
    panicked = "panicked" in drill.broker.log_path.read_text(errors="replace")
    print("s3 drill: broker", outcome.value, "panicked", panicked, "exits", drill.pipeline.exits, counts)
    assert outcome in (Outcome.RUNNING, Outcome.RESTARTED)
    # No daemon sat idle through the outage: each gave up (liveness) and was restarted.
    assert all(EXIT_UNHEALTHY in drill.pipeline.exits[s] for s in KILLED), drill.pipeline.exits


async def test_broker_restart_mid_crawl(drill: Drill, web: DemoWeb) -> None:
    urls = drill_urls(web)
    task = drill.crawl(urls)
    await drill.wait_rows(5)
    await asyncio.to_thread(drill.broker.stop)
    await asyncio.sleep(3.0)
    assert await asyncio.to_thread(drill.broker.ensure_running) == Outcome.STARTED
    progress = await _finish(drill, task)
    counts = await assert_accounted(drill.settings, urls, progress, batch=drill.batch, context=drill.logs())
    print("broker drill", counts)
