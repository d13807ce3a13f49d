"""Run the hot-path daemons as real subprocesses against the test services.

Each stage is started exactly as supervisord starts it (``python -m workers.<stage>``) with
the test settings in its environment, so a test can SIGKILL one mid-stream and restart it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from workers.settings import Settings
from workers.stack.environment import settings_env

__all__ = ["HOT_PATH", "Pipeline"]

HOT_PATH = ("ingestor", "router", "fast_extractor", "storage_writer", "discovery")
ROOT = Path(__file__).resolve().parents[2]


class Pipeline:
    def __init__(
        self, settings: Settings, *, log_dir: Path, extra_env: Mapping[str, str] | None = None
    ) -> None:
        self.env = {**os.environ, **settings_env(settings), **(extra_env or {})}
        self.env.update(
            PYTHONUNBUFFERED="1",
            STREAMCRAWL_METRICS_ENABLED="false",
            STREAMCRAWL_KAFKA_COMMIT_INTERVAL_S="0.5",
        )
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, *stages: str) -> None:
        """Start stages by module name; ``fast_extractor#2`` is a second process of a stage."""
        for stage in stages or HOT_PATH:
            module, _, index = stage.partition("#")
            log = (self.log_dir / f"{stage}.log").open("ab")
            self.procs[stage] = subprocess.Popen(
                [sys.executable, "-m", f"workers.{module}"],
                env={**self.env, "STREAMCRAWL_METRICS_PROCESS_INDEX": index or "0"},
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self, stage: str) -> None:
        """SIGKILL: no drain, no commit — the crash the at-least-once design must survive."""
        proc = self.procs[stage]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def alive(self, stage: str) -> bool:
        return self.procs[stage].poll() is None

    def stop(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every stage (graceful drain), SIGKILL what is left; returns exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout_s
        codes: dict[str, int | None] = {}
        for stage, proc in self.procs.items():
            try:
                codes[stage] = proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
                codes[stage] = None
        return codes

    def logs(self, stage: str, tail: int = 40) -> str:
        path = self.log_dir / f"{stage}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-tail:]) if path.exists() else ""
