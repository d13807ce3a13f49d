"""Dagster webserver and daemon of the embedded stack.

DAGSTER_HOME is ``<data dir>/dagster``; the checkout's dagster.yaml is copied there on
every start (PostgreSQL storage read from the STREAMCRAWL_PG_* variables, telemetry off,
two concurrent runs). Both processes load workspace.yaml from the checkout, get the
settings' environment, TMPDIR under the data dir, and their own session with default
signal handling, so SIGTERM stops them and their code servers are stopped with them.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from workers.errors import StackError
from workers.settings import Settings, StackSettings
from workers.stack.component import Component
from workers.stack.environment import settings_env
from workers.stack.paths import StackPaths, project_root, venv_binary
from workers.stack.ports import LOCALHOST, PortClaim, env_name
from workers.stack.process import ProcessSpec

__all__ = ["DagsterDaemon", "DagsterWebserver", "graphql"]


class _DagsterProcess(Component):
    stop_signal = signal.SIGTERM
    stop_timeout_s = 12.0  # then SIGKILL: its state is in PostgreSQL, a kill loses nothing

    def __init__(self, *, settings: Settings, paths: StackPaths) -> None:
        super().__init__(run_dir=paths.run, log_dir=paths.logs)
        self.settings = settings
        self.paths = paths

    def _env(self) -> dict[str, str]:
        tmp = self.paths.tmp / "dagster"
        return {
            **os.environ,
            **settings_env(self.settings),
            "DAGSTER_HOME": str(self.paths.dagster_home),
            "TMPDIR": str(tmp),
            "PYTHONUNBUFFERED": "1",
        }

    def prepare(self) -> None:
        self.paths.dagster_home.mkdir(parents=True, exist_ok=True)
        (self.paths.tmp / "dagster").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(project_root() / "dagster.yaml", self.paths.dagster_home / "dagster.yaml")

    def _spec(self, argv: list[str]) -> ProcessSpec:
        return self.process_spec(argv, env=self._env(), cwd=project_root())

    @property
    def workspace(self) -> Path:
        return project_root() / "workspace.yaml"


class DagsterWebserver(_DagsterProcess):
    name = "dagster-webserver"
    ready_timeout_s = 180.0

    @property
    def port(self) -> int:
        return self.settings.stack.dagster_port

    def address(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def port_claims(self) -> list[PortClaim]:
        return [PortClaim(self.port, env_name(StackSettings, "dagster_port"))]

    def spec(self) -> ProcessSpec:
        return self._spec(
            [
                str(venv_binary("dagster-webserver")),
                "-h",
                LOCALHOST,
                "-p",
                str(self.port),
                "-w",
                str(self.workspace),
            ]
        )

    def probe(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address()}/server_info", timeout=2.0) as resp:
                return int(resp.status) == 200
        except (urllib.error.URLError, OSError, ValueError):
            return False


class DagsterDaemon(_DagsterProcess):
    name = "dagster-daemon"
    ready_timeout_s = 10.0

    def address(self) -> str:
        return f"DAGSTER_HOME={self.paths.dagster_home}"

    def port_claims(self) -> list[PortClaim]:
        return []

    def spec(self) -> ProcessSpec:
        return self._spec([str(venv_binary("dagster-daemon")), "run", "-w", str(self.workspace)])

    def probe(self) -> bool:
        # No port: it is up while its process lives (its heartbeats show in the Dagster UI).
        return self.process.running() is not None


def graphql(
    stack: StackSettings, query: str, variables: dict[str, Any] | None = None, *, timeout_s: float = 60.0
) -> dict[str, Any]:
    """Run one query against the stack's Dagster webserver; GraphQL errors raise StackError."""
    request = urllib.request.Request(
        f"http://{LOCALHOST}:{stack.dagster_port}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        body: dict[str, Any] = json.load(response)
    if "errors" in body:
        raise StackError(f"Dagster GraphQL errors: {body['errors']}")
    data: dict[str, Any] = body["data"]
    return data
