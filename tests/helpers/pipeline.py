"""Run the hot-path daemons as real subprocesses against the test services.

Each stage is started exactly as supervisord starts it (``python -m workers.<stage>``) with
the test settings in its environment, so a test can SIGKILL one mid-stream and restart it.
``supervise()`` restarts a stage whenever it exits, like supervisord's ``autorestart``,
and records every exit status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path

from workers.settings import Settings
from workers.stack.environment import settings_env

__all__ = ["HOT_PATH", "Pipeline"]

HOT_PATH = ("ingestor", "router", "fast_extractor", "storage_writer", "discovery")
ROOT = Path(__file__).resolve().parents[2]
_STARTSECS = 5.0
_MAX_RESTART_DELAY_S = 5.0
_RESTART_WAIT_S = _MAX_RESTART_DELAY_S + 10.0
"""The longest restart delay plus a loaded machine's start of a Python process."""


class Pipeline:
    def __init__(
        self, settings: Settings, *, log_dir: Path, extra_env: Mapping[str, str] | None = None
    ) -> None:
        # Metrics off unless a test asks for them (its own ports): many stages share one machine.
        self.env = {**os.environ, **settings_env(settings), "STREAMCRAWL_METRICS_ENABLED": "false"}
        # PYTHONFAULTHANDLER: a stage that dies of a signal (SIGSEGV, SIGABRT) leaves its traceback.
        self.env.update(
            PYTHONUNBUFFERED="1", PYTHONFAULTHANDLER="1", STREAMCRAWL_KAFKA_COMMIT_INTERVAL_S="0.5"
        )
        self.env.update(extra_env or {})
        self.log_dir = log_dir
        log_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.exits: dict[str, list[int]] = {}
        """Exit statuses of supervised stages, in order (negative: killed by that signal)."""
        self.events: list[tuple[float, str, str]] = []
        """(time.time(), stage, what) of every kill and every exit the supervisor saw."""
        self._supervised: set[str] = set()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    def _spawn(self, stage: str) -> subprocess.Popen[bytes]:
        name, _, index = stage.partition("#")
        module = name if "." in name else f"workers.{name}"
        log = (self.log_dir / f"{stage}.log").open("ab")
        return subprocess.Popen(
            [sys.executable, "-m", module],
            env={**self.env, "STREAMCRAWL_METRICS_PROCESS_INDEX": index or "0"},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def start(self, *stages: str) -> None:
        """Start stages by module name; ``fast_extractor#2`` is a second process of a stage;
        a dotted name (``tests.helpers.crash_router``) is run as that module."""
        for stage in stages or HOT_PATH:
            with self._lock:
                self.procs[stage] = self._spawn(stage)

    def supervise(self, *stages: str) -> None:
        """Start ``stages`` and restart each whenever it exits (until ``stop()``)."""
        self.start(*stages)
        with self._lock:
            self._supervised.update(stages)
            for stage in stages:
                self.exits.setdefault(stage, [])
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch, name="pipeline-supervisor", daemon=True)
            self._watcher.start()

    def _watch(self) -> None:
        # Like supervisord: a process that dies within _STARTSECS of its start is restarted
        # after a growing delay (1 s, 2 s, ... up to _MAX_RESTART_DELAY_S), one that ran longer at once.
        started = {stage: time.monotonic() for stage in self._supervised}
        quick: dict[str, int] = dict.fromkeys(self._supervised, 0)
        due: dict[str, float] = {}
        while not self._stopping.wait(0.2):
            with self._lock:
                now = time.monotonic()
                for stage in self._supervised:
                    started.setdefault(stage, now)
                    quick.setdefault(stage, 0)
                    if stage in due:
                        if now >= due[stage] and not self._stopping.is_set():
                            del due[stage]
                            self.procs[stage] = self._spawn(stage)
                            started[stage] = now
                        continue
                    code = self.procs[stage].poll()
                    if code is None or self._stopping.is_set():
                        continue
                    self.exits[stage].append(code)
                    self.events.append((time.time(), stage, f"exited {code}"))
                    quick[stage] = quick[stage] + 1 if now - started[stage] < _STARTSECS else 0
                    due[stage] = now + min(_MAX_RESTART_DELAY_S, float(quick[stage]))

    def kill(self, stage: str) -> None:
        """SIGKILL: no drain, no commit — the crash the at-least-once design must survive.

        A supervised stage that is down (killed a moment ago, its restart not yet due) is
        waited for first, as an operator's second ``kill -9`` would find the new process."""
        deadline = time.monotonic() + _RESTART_WAIT_S
        while True:
            with self._lock:
                proc = self.procs[stage]
                exits = list(self.exits.get(stage, []))
                down = stage in self._supervised and proc.poll() is not None
            if not down or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            raise AssertionError(
                f"{stage} had already exited (status {proc.poll()}, exits so far {exits}) before "
                f"the kill at {time.time():.3f}; events {self.events}; its log ends:\n"
                f"{self.logs(stage, tail=15)}"
            ) from None
        with self._lock:
            self.events.append((time.time(), stage, "killed"))
        proc.wait(timeout=10)

    def alive(self, stage: str) -> bool:
        return self.procs[stage].poll() is None

    def pid(self, stage: str) -> int:
        return self.procs[stage].pid

    def stop(self, timeout_s: float = 30.0) -> dict[str, int | None]:
        """SIGTERM every stage (graceful drain), SIGKILL what is left; returns exit codes."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
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
