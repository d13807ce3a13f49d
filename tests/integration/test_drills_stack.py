"""Drills on the embedded stack as a user runs it (`streamcrawl up` / `down`, supervisord).

One stack (broker log in S3, no Dagster, no browser) crawls the demo web twice:

1. supervisord is killed with -9 mid-crawl; its workers must not outlive it (they get
   SIGTERM from the kernel and drain), ``up`` starts exactly one new set, the crawl ends
   with every URL accounted for;
2. ``streamcrawl down`` mid-crawl, then ``up``: the crawl resumes from the durable broker
   and ends accounted for.

Finally ``down`` leaves no process of the stack behind (the second drill ends with it).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.accounting import assert_accounted
from tests.helpers.drills import drill_urls, start_crawl, wait_for, wait_rows
from tests.helpers.ports import free_port, free_port_with_grpc
from workers.demoweb import DemoWeb
from workers.settings import (
    ApiSettings,
    IngestorSettings,
    KafkaSettings,
    MetricsSettings,
    PostgresSettings,
    S3Settings,
    Settings,
    StackSettings,
)
from workers.stack.environment import settings_env
from workers.stack.paths import StackPaths
from workers.stack.process import PidRecord
from workers.stack.procfs import marked_processes, pid_alive
from workers.stack.supervisor import PROGRAMS, STACK_OWNER_ENV, Supervisor, orphans
from workers.stack.worker_health import worker_health
from workers.topics import Stage

pytestmark = pytest.mark.integration

_CLI = [sys.executable, "-m", "workers.cli.main"]
# Worker processes `up` runs without the browser (ingestor, router, two fast extractors, ...).
_WORKERS = sum(p.numprocs for p in PROGRAMS if p.name != "rich_renderer")
_STAGE_WORKERS = sum(
    p.numprocs for p in PROGRAMS if p.name in {s.value for s in Stage} and p.name != "rich_renderer"
)
"""Processes that serve a stage's /readyz (the API and the lag exporter are not stages)."""


def _stack_settings(data_dir: Path) -> Settings:
    """A stack on free ports under ``data_dir``: broker log in S3, no Dagster, no browser."""
    return Settings(
        stack=StackSettings(
            data_dir=data_dir,
            seaweed_master_port=free_port_with_grpc(),
            seaweed_volume_port=free_port_with_grpc(),
            seaweed_filer_port=free_port_with_grpc(),
            supervisor_port=free_port(),
            dagster_port=free_port(),
            prometheus_port=free_port(),
            start_dagster=False,
            start_rich_renderer=False,
        ),
        kafka=KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{free_port()}", session_timeout_ms=3000, heartbeat_interval_ms=500
        ),
        postgres=PostgresSettings(port=free_port(), password="drill-password"),
        s3=S3Settings(endpoint=f"127.0.0.1:{free_port_with_grpc()}", secret_key="drill-secret"),
        metrics=MetricsSettings(base_port=free_port()),
        api=ApiSettings(port=free_port()),
        ingestor=IngestorSettings(
            resolve_overrides={"*.demo.test": "127.0.0.1"},
            allow_private_networks=True,
            total_timeout_s=3,
            read_timeout_s=2,
            max_retries=1,
            per_host_delay_s=0.05,
            crawl_delay_cap_s=0.2,
            max_requeues=1,
            requeue_base_delay_s=0.5,
            per_ip_concurrency=64,  # the whole demo web is 127.0.0.1
        ),
    )


def _cli(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([*_CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode in (0, 3), (args, done.stdout, done.stderr)
    return done


class Stack:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.settings = _stack_settings(root / "data")
        # The CLI parses the same values from its environment, as a user's shell would pass them.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMCRAWL_")}
        self.env.update(settings_env(self.settings))
        self.paths = StackPaths.at(root / "data")

    def up(self) -> str:
        return _cli(self.env, "up").stdout

    def down(self) -> str:
        return _cli(self.env, "down").stdout

    def status(self) -> dict[str, Any]:
        return dict(json.loads(_cli(self.env, "status", "--json").stdout))

    def supervisord(self) -> PidRecord | None:
        path = self.paths.run / "supervisord.pid"
        return PidRecord.loads(path.read_text()) if path.exists() else None

    def marked(self) -> list[int]:
        """Every live process carrying this stack's mark (supervisord, workers, their children)."""
        return sorted(p.pid for p in marked_processes(STACK_OWNER_ENV, str(self.paths.root)))


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    root = Path(tempfile.mkdtemp(prefix="streamcrawl-drill-stack-"))
    root.chmod(0o711)
    found = Stack(root)
    try:
        found.up()
        yield found
    finally:
        subprocess.run([*_CLI, "down"], env=found.env, capture_output=True, timeout=120)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
async def web() -> AsyncIterator[DemoWeb]:
    async with DemoWeb(port=0, processes=1) as server:
        yield server


async def _running_workers(stack: Stack) -> list[str]:
    programs = await asyncio.to_thread(Supervisor(settings=stack.settings, paths=stack.paths).programs)
    return [p.name for p in programs if p.state == "RUNNING"]


async def test_kill_9_of_supervisord_then_up_leaves_exactly_one_set(stack: Stack, web: DemoWeb) -> None:
    urls = drill_urls(web, hosts=8, per_host=10, seed=11)
    batch = "drill-supervisord"
    await wait_for(lambda: _all_running(stack), timeout_s=90, what="every worker RUNNING")
    task = start_crawl(stack.settings, urls, batch=batch)
    stored = await wait_rows(stack.settings, 5, batch=batch)
    expected = sum(u.expected in ("stored", "skipped") for u in urls)
    assert stored < expected and not task.done(), "the kill must land mid-crawl"
    supervisord = stack.supervisord()
    assert supervisord is not None
    before = set(stack.marked())
    os.kill(supervisord.pid, signal.SIGKILL)
    # The workers get SIGTERM from the kernel (parent death) and drain: none outlives it for long.
    try:
        await wait_for(lambda: _none_alive(before), timeout_s=30, what="the old workers to exit")
    except AssertionError as exc:
        raise AssertionError((str(exc), _survivors(stack, before))) from exc
    out = await asyncio.to_thread(stack.up)
    assert "supervisord        started" in out, out
    await wait_for(lambda: _all_running(stack), timeout_s=90, what="every worker RUNNING again")
    new = stack.supervisord()
    assert new is not None and new.pid != supervisord.pid
    marked = stack.marked()
    # supervisord + one set of programs (the fast extractors' own extraction processes are
    # their children, not supervisord's, and die with them)
    programs = [p.pid for p in marked_processes(STACK_OWNER_ENV, str(stack.paths.root)) if p.ppid == new.pid]
    assert len(programs) == _WORKERS and new.pid in marked, (marked, programs)
    assert not orphans(stack.paths.root, supervisor_pid=new.pid)
    await wait_for(lambda: _all_answer(stack), timeout_s=90, what="every worker to answer /readyz")
    report = await asyncio.to_thread(stack.status)
    assert report["orphans"] == [] and len(report["programs"]) == _WORKERS
    stages = {s.value for s in Stage}
    health = {p["name"]: p["health"] for p in report["programs"] if p["name"].rsplit("_", 1)[0] in stages}
    assert all(h is not None and h["healthy"] for h in health.values()), health
    progress = await task
    assert progress is not None
    counts = await assert_accounted(stack.settings, urls, progress, batch=batch, context=out)
    print("supervisord drill", stored, counts)


async def test_down_mid_crawl_then_up_resumes_and_down_leaves_nothing(stack: Stack, web: DemoWeb) -> None:
    urls = drill_urls(web, hosts=8, per_host=10, seed=12)
    batch = "drill-down-up"
    await wait_for(lambda: _all_running(stack), timeout_s=90, what="every worker RUNNING")
    task = start_crawl(stack.settings, urls, batch=batch, timeout_s=300)
    stored = await wait_rows(stack.settings, 5, batch=batch)
    assert stored < sum(u.expected in ("stored", "skipped") for u in urls), "down must land mid-crawl"
    await asyncio.to_thread(stack.down)
    assert stack.marked() == [], "down leaves no process of the stack"
    await asyncio.to_thread(stack.up)
    progress = await task
    assert progress is not None
    counts = await assert_accounted(stack.settings, urls, progress, batch=batch)
    print("down/up drill", stored, counts)
    await asyncio.to_thread(stack.down)  # the stack's last down: nothing of it may be left
    assert stack.marked() == []
    for pid_file in stack.paths.run.glob("*.pid"):
        rec = PidRecord.loads(pid_file.read_text())
        assert rec is None or not pid_alive(rec.pid, rec.start_time), pid_file


def _survivors(stack: Stack, pids: set[int]) -> dict[str, object]:
    """What is still alive, and the tail of every worker log (for a failing drill's message)."""
    left = {
        pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:120]
        for pid in pids
        if pid_alive(pid)
    }
    logs = {
        p.name: p.read_text(errors="replace")[-1500:] for p in (stack.paths.supervisor / "logs").glob("*.log")
    }
    return {"alive": left, "logs": logs}


async def _all_answer(stack: Stack) -> bool:
    """Every worker serves its own health (it has imported and started, not only been spawned)."""
    programs = await asyncio.to_thread(Supervisor(settings=stack.settings, paths=stack.paths).programs)
    answers = await asyncio.to_thread(worker_health, stack.settings.metrics, programs)
    return len(answers) == _STAGE_WORKERS and all(a is not None and a.get("ready") for a in answers.values())


async def _all_running(stack: Stack) -> bool:
    return len(await _running_workers(stack)) == _WORKERS


async def _none_alive(pids: set[int]) -> bool:
    return not any(pid_alive(pid) for pid in pids)
