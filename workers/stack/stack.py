"""The whole embedded stack: start in dependency order, stop in reverse, report status.

``up``: S3 (with PostgreSQL alongside, which depends on nothing) → broker → topics
provisioned → Dagster webserver + daemon, supervisord (workers) and Prometheus, each wave started once
the previous one answers. Each component is left alone if running, started if not (see
``Component.ensure_running``). ``down`` stops by PID files alone (it needs no valid
settings), in reverse order, independent components in parallel.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from workers.provision import ProvisionReport, provision
from workers.settings import Settings
from workers.stack.broker import TansuBroker
from workers.stack.component import Component, ComponentStatus, Outcome
from workers.stack.dagster import DagsterDaemon, DagsterWebserver
from workers.stack.demoweb import DemoWebServer
from workers.stack.paths import StackPaths
from workers.stack.postgres import EmbeddedPostgres
from workers.stack.prometheus import Prometheus
from workers.stack.seaweed import SeaweedFS
from workers.stack.supervisor import Supervisor

__all__ = ["STOP_ORDER", "Stack", "StartEvent", "stop_recorded"]

# Stopped wave by wave; the components of one wave do not depend on each other.
STOP_ORDER: tuple[tuple[type[Component], ...], ...] = (
    (Supervisor, DagsterDaemon, DagsterWebserver, DemoWebServer, Prometheus),
    (EmbeddedPostgres, TansuBroker),
    (SeaweedFS,),
)


@dataclass(frozen=True, slots=True)
class StartEvent:
    name: str
    outcome: Outcome
    address: str
    pid: int | None
    seconds: float
    note: str = ""


class Stack:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.paths = StackPaths.at(settings.stack.data_dir)
        stack = settings.stack
        self.s3 = SeaweedFS(stack=stack, s3=settings.s3, paths=self.paths)
        self.broker = TansuBroker(stack=stack, kafka=settings.kafka, s3=settings.s3, paths=self.paths)
        self.postgres = EmbeddedPostgres(stack=stack, postgres=settings.postgres, paths=self.paths)
        self.dagster_webserver = DagsterWebserver(settings=settings, paths=self.paths)
        self.dagster_daemon = DagsterDaemon(settings=settings, paths=self.paths)
        self.supervisor = Supervisor(settings=settings, paths=self.paths)
        self.demoweb = DemoWebServer(stack=stack, paths=self.paths)
        self.prometheus = Prometheus(settings=settings, paths=self.paths)

    def components(self) -> list[Component]:
        """Every component in start order (whether or not this configuration starts it)."""
        return [
            self.s3,
            self.broker,
            self.postgres,
            self.dagster_webserver,
            self.dagster_daemon,
            self.supervisor,
            self.prometheus,
            self.demoweb,
        ]

    def enabled(self, component: Component) -> bool:
        if component in (self.dagster_webserver, self.dagster_daemon):
            return self.settings.stack.start_dagster
        if component is self.supervisor:
            return self.settings.stack.start_workers
        if component is self.prometheus:
            return self.settings.stack.start_prometheus
        # The demo web is started by `streamcrawl demo`, not by `up`.
        return component is not self.demoweb

    def start_waves(self) -> list[list[Component]]:
        """Start order: a wave starts once the previous one is ready; a wave's members in parallel.

        S3 and PostgreSQL depend on nothing; the broker keeps its log in S3; topics are
        provisioned after the broker; Dagster needs PostgreSQL, the workers need everything.
        """
        waves: list[list[Component]] = [
            [self.s3, self.postgres],
            [self.broker],
            [self.dagster_webserver, self.dagster_daemon, self.supervisor, self.prometheus],
        ]
        return [[c for c in wave if self.enabled(c)] for wave in waves]

    def up(
        self,
        *,
        on_started: Callable[[StartEvent], None] | None = None,
        on_provisioned: Callable[[ProvisionReport], None] | None = None,
    ) -> ProvisionReport:
        """Bring every enabled component up (idempotent); returns the topic provisioning report."""
        self.paths.ensure()
        report = ProvisionReport()
        for wave in self.start_waves():
            with ThreadPoolExecutor(max_workers=max(1, len(wave))) as pool:
                futures = [pool.submit(_ensure_timed, c, on_started) for c in wave]
                errors = [f.exception() for f in futures]
            for error in errors:
                if error is not None:
                    raise error
            if self.broker in wave:
                report = asyncio.run(provision(self.settings.kafka))
                if on_provisioned is not None:
                    on_provisioned(report)
        return report

    def status(self) -> list[ComponentStatus]:
        return [c.status() for c in self.components() if self.enabled(c) or c.pid() is not None]


def _ensure_timed(component: Component, on_started: Callable[[StartEvent], None] | None) -> None:
    started = time.monotonic()
    outcome = component.ensure_running()
    if on_started is not None:
        on_started(
            StartEvent(
                name=component.name,
                outcome=outcome,
                address=component.address(),
                pid=component.pid(),
                seconds=time.monotonic() - started,
                note=component.start_note(),
            )
        )


def _stop_timed(cls: type[Component], paths: StackPaths) -> tuple[str, bool, float]:
    started = time.monotonic()
    stopped = cls.stop_recorded(paths.run)
    return cls.name, stopped, time.monotonic() - started


def stop_recorded(paths: StackPaths, *, on_stopped: Callable[[str, bool, float], None] | None = None) -> None:
    """Stop every component named in the data dir's PID files, in reverse start order.

    ``on_stopped(name, was_running, seconds)`` is called for each component.
    """
    for wave in STOP_ORDER:
        with ThreadPoolExecutor(max_workers=len(wave)) as pool:
            results = list(pool.map(lambda cls: _stop_timed(cls, paths), wave))
        if on_stopped is not None:
            for name, stopped, seconds in results:
                on_stopped(name, stopped, seconds)
