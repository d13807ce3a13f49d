"""The services host of the multi-host drill (tests/integration/test_multihost_drill.py).

Run inside the ``svc`` network namespace of a ``NetLab`` that the test built::

    ip netns exec <prefix>svc python -m tests.helpers.drill <prefix> <state dir>

It starts the broker, PostgreSQL, S3 and the demo web on this host, every stage daemon on
``w1`` and ``w2``, crawls, cuts ``w2`` off mid-crawl and checks that nothing was lost. An
assertion that fails exits non-zero with its traceback, which the test shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from tests.helpers.accounting import assert_accounted
from tests.helpers.ledger import ledger_states
from tests.helpers.netns import Forwarder, NetLab
from tests.helpers.outcomes import crawl_and_wait
from tests.helpers.ports import free_port
from tests.helpers.services import start_postgres, start_s3
from workers.demoweb import DemoURL, DemoWeb, demo_urls
from workers.observability.metrics import STAGE_PORT_OFFSET
from workers.provision import provision
from workers.settings import IngestorSettings, KafkaSettings, Settings
from workers.stack.environment import settings_env
from workers.stack.paths import tansu_binary
from workers.stack.ports import parse_host_port, tcp_open
from workers.stack.process import wait_until
from workers.topics import Stage

ROOT = Path(__file__).resolve().parents[2]
WORKER_HOSTS = ("w1", "w2")
STAGES = [s.value for s in Stage]
# Must have consumed on both hosts before the cut: the stages every page goes through.
HOT = ["ingestor", "router", "fast_extractor", "storage_writer"]
METRICS_BASE = 19100
STARTUP_S = 150.0
CRAWL_S = 300.0
"""Deadlines of the two phases; the test allows their sum plus the services' start-up."""
DRILL_ENV = {
    "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "true",
    "STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S": "3",
    "STREAMCRAWL_INGESTOR_READ_TIMEOUT_S": "2",
    "STREAMCRAWL_INGESTOR_MAX_RETRIES": "1",
    # The lab's demo hosts share one address; failures are re-queued as by default (a page
    # cut off with its host is fetched again later, not dead-lettered).
    "STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY": "64",
    # Slow enough per host that the crawl is still running when a host is cut off.
    "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0.4",
    "STREAMCRAWL_INGESTOR_CRAWL_DELAY_CAP_S": "0.5",
    "STREAMCRAWL_INGESTOR_RETRY_AFTER_CAP_S": "2",
    # The URLs that fail by design (stall, slow, 500, 429) are re-queued twice, seconds apart,
    # then dead-lettered: the drill is about losing a host, not about the requeue cadence
    # (5 requeues from 5 s doubling would keep them in flight for ~3 minutes).
    "STREAMCRAWL_INGESTOR_MAX_REQUEUES": "2",
    "STREAMCRAWL_INGESTOR_REQUEUE_BASE_DELAY_S": "1",
    "STREAMCRAWL_INGESTOR_REQUEUE_MAX_DELAY_S": "4",
    # A host whose failing URLs open its breaker is paused for seconds, not a minute doubling
    # per failed half-open try (site-004's two broken URLs alone paused it for ~250 s).
    "STREAMCRAWL_INGESTOR_BREAKER_PAUSE_S": "2",
    "STREAMCRAWL_INGESTOR_BREAKER_MAX_PAUSE_S": "4",
    "STREAMCRAWL_RENDERER_CONCURRENCY": "2",
    "STREAMCRAWL_KAFKA_COMMIT_INTERVAL_S": "0.5",
    "STREAMCRAWL_METRICS_ENABLED": "true",
    "STREAMCRAWL_METRICS_BIND_HOST": "0.0.0.0",
    "STREAMCRAWL_METRICS_BASE_PORT": str(METRICS_BASE),
    "PYTHONUNBUFFERED": "1",
}


def _consumed(address: str, stage: str) -> float:
    """streamcrawl_messages_consumed_total of one daemon, scraped over the LAN (0 if unreachable)."""
    port = METRICS_BASE + STAGE_PORT_OFFSET[Stage(stage)]
    try:
        with urllib.request.urlopen(f"http://{address}:{port}/metrics", timeout=1) as resp:
            text = resp.read().decode()
    except OSError:
        return 0.0
    for family in text_string_to_metric_families(text):
        if family.name == "streamcrawl_messages_consumed":
            return sum(s.value for s in family.samples if s.name.endswith("_total"))
    return 0.0


class Drill:
    def __init__(self, lab: NetLab, base: Path) -> None:
        self.lab = lab
        self.base = base
        self.svc = lab.address("svc")
        self.cleanups: list[Any] = []
        self.procs: dict[tuple[str, str], subprocess.Popen[bytes]] = {}

    # ------------------------------------------------------------------ services on `svc`
    def start_services(self) -> Settings:
        s3_component, s3 = start_s3(self.base / "s3")
        self.cleanups.append(s3_component.stop)
        # PostgreSQL serves the LAN itself (not through the forwarder): a host cut off with a
        # transaction open must look to the server like a vanished client does in production.
        pg_component, pg = start_postgres(self.base / "pg", lan=self.svc)
        self.cleanups.append(pg_component.stop)
        kafka_port = free_port()
        log = (self.base / "tansu.log").open("ab")
        url = f"tcp://{self.svc}:{kafka_port}"
        broker = subprocess.Popen(
            [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.cleanups.append(lambda: (broker.kill(), broker.wait(10)))
        assert wait_until(lambda: tcp_open(kafka_port, self.svc), timeout_s=15), "broker did not start"
        _, s3_port = parse_host_port(s3.endpoint, setting="s3")
        self.forward_ports = [s3_port]
        return Settings(
            kafka=KafkaSettings(
                bootstrap_servers=f"{self.svc}:{kafka_port}",
                session_timeout_ms=2000,
                heartbeat_interval_ms=300,
            ),
            postgres=pg.model_copy(update={"host": self.svc}),
            s3=s3.model_copy(update={"endpoint": f"{self.svc}:{s3_port}"}),
            ingestor=IngestorSettings(
                allow_private_networks=True, resolve_overrides={"*.demo.test": self.svc}
            ),
        )

    def forward(self, ports: list[int]) -> None:
        forwarder = Forwarder(self.svc, ports).start()
        self.cleanups.append(forwarder.stop)

    # ------------------------------------------------------------- stages on w1 and w2
    def start_stages(self, settings: Settings) -> None:
        for host in WORKER_HOSTS:
            data_dir = self.base / host
            data_dir.mkdir(parents=True, exist_ok=True)
            env = {**os.environ, **settings_env(settings), **DRILL_ENV, "STREAMCRAWL_DATA_DIR": str(data_dir)}
            for stage in STAGES:
                log = (self.base / f"{host}-{stage}.log").open("ab")
                self.procs[host, stage] = self.lab.spawn(
                    host,
                    [sys.executable, "-m", f"workers.{stage}"],
                    env=env,
                    cwd=ROOT,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )

    def logs(self, host: str, stage: str, tail: int = 15) -> str:
        path = self.base / f"{host}-{stage}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:]) if path.exists() else ""

    def stop_stages(self) -> None:
        for (host, _stage), proc in self.procs.items():
            if proc.poll() is None:
                # The cut host cannot drain (nothing is reachable): it dies like a lost machine.
                sig = signal.SIGKILL if host == "w2" else signal.SIGTERM
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def close(self) -> None:
        self.stop_stages()
        for cleanup in reversed(self.cleanups):
            with contextlib.suppress(Exception):
                cleanup()


async def _drill(drill: Drill) -> None:
    settings = drill.start_services()
    await provision(settings.kafka)
    web = DemoWeb(port=0, processes=1)
    await web.start()
    try:
        drill.forward([*drill.forward_ports, web.port])
        await _crawl_and_cut(drill, settings, web)
    finally:
        drill.stop_stages()
        await web.stop()


async def _crawl_and_cut(drill: Drill, settings: Settings, web: DemoWeb) -> None:
    urls: list[DemoURL] = demo_urls(
        port=web.port, hosts=10, per_host=12, seed=7, spa_share=0.1, timeout_delay_s=6, failures_each=1
    )
    drill.start_stages(settings)
    w1, w2 = (drill.lab.address(h) for h in WORKER_HOSTS)
    # Every daemon on both hosts answers before the crawl starts (one deadline for all of them:
    # ten interpreters and two Chromiums start at once on a small machine).
    started = time.monotonic()
    waiting = {(h, st) for h in WORKER_HOSTS for st in STAGES}

    def answering() -> bool:
        for host, stage in list(waiting):
            if tcp_open(METRICS_BASE + STAGE_PORT_OFFSET[Stage(stage)], drill.lab.address(host)):
                waiting.discard((host, stage))
            elif drill.procs[host, stage].poll() is not None:
                raise AssertionError(f"{stage} on {host} exited:\n{drill.logs(host, stage)}")
        return not waiting

    ok = await asyncio.to_thread(wait_until, answering, timeout_s=STARTUP_S, interval_s=0.5)
    assert ok, f"not answering after {STARTUP_S:.0f} s: {sorted(waiting)}"
    print(
        f"drill: {len(STAGES)} stages on {len(WORKER_HOSTS)} hosts up in {time.monotonic() - started:.1f} s",
        flush=True,
    )

    batch = f"drill-{time.time_ns()}"
    task = asyncio.create_task(crawl_and_wait(settings, [u.url for u in urls], batch, timeout_s=CRAWL_S))

    # Cut w2 off once both hosts are doing work in every hot-path stage.
    deadline = time.monotonic() + CRAWL_S
    busy: dict[str, tuple[float, float]] = {}
    while time.monotonic() < deadline and not task.done():
        busy = {
            s: (await asyncio.to_thread(_consumed, w1, s), await asyncio.to_thread(_consumed, w2, s))
            for s in HOT
        }
        if all(a > 0 and b > 0 for a, b in busy.values()):
            break
        await asyncio.sleep(0.3)
    assert not task.done(), f"the crawl ended before both hosts were busy: {busy}"
    assert all(a > 0 and b > 0 for a, b in busy.values()), f"not every stage ran on both hosts: {busy}"
    drill.lab.cut("w2")
    cut_at = time.monotonic()
    before = {s: await asyncio.to_thread(_consumed, w1, s) for s in HOT}
    assert await asyncio.to_thread(_consumed, w2, "ingestor") == 0.0, "w2 is still reachable"

    progress = await task
    after = {s: await asyncio.to_thread(_consumed, w1, s) for s in HOT}
    print(
        f"\ndrill: cut w2 after {busy}; w1 took over {after} (was {before}); {time.monotonic() - cut_at:.1f} s to finish"
    )
    print("drill summary", progress.summary())
    if not progress.complete:  # where the URLs still in flight are
        states = await ledger_states(settings, batch)
        open_rows = [(r["url"], r["state"], r["route"], r["reason"]) for r in states.values()]
        print("drill: not finished:", [r for r in open_rows if r[1] == "queued"])
    assert after["ingestor"] > before["ingestor"], "w1 took over w2's share of crawl.request"
    # The drills' end condition: every URL as its kind demands, 0 lost, one row per stored URL,
    # exactly the objects the rows reference (a cut writer's orphans reclaimed by fsck --repair).
    counts = await assert_accounted(
        settings, urls, progress, batch=batch, context={s: drill.logs("w1", s) for s in HOT}
    )
    print("drill accounted", counts)


def main() -> None:
    prefix, base = sys.argv[1], Path(sys.argv[2])
    lab = NetLab(["svc", *WORKER_HOSTS], prefix=prefix)
    drill = Drill(lab, base)
    try:
        asyncio.run(_drill(drill))
    finally:
        drill.close()


if __name__ == "__main__":
    main()
