"""The shape every embedded-stack component shares: one managed process, ports, a probe.

``ensure_running()`` is what makes ``streamcrawl up`` idempotent:

* the PID file names a live process (same PID *and* start time) and its readiness probe
  answers → the component is running and is left alone;
* the recorded process is alive but the probe does not answer yet → wait for readiness
  (it may still be starting), and fail with the log's last line if it never does;
* no live process → remove the stale PID file, check every port it binds is free
  (``PortInUseError`` naming the setting otherwise), start it, wait until ready, then run
  its one-time setup (buckets, databases).
"""

from __future__ import annotations

import abc
import enum
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from workers.stack.ports import PortClaim, ensure_ports_free
from workers.stack.process import ManagedProcess, ProcessSpec

__all__ = ["Component", "ComponentStatus", "Outcome"]


class Outcome(enum.StrEnum):
    RUNNING = "running"
    """Was already running and answering: left alone."""
    STARTED = "started"
    """Was not running: started."""
    RESTARTED = "restarted"
    """Was running but failed its health check (alive, not serving): stopped and started again."""


@dataclass(frozen=True, slots=True)
class ComponentStatus:
    name: str
    up: bool
    address: str
    pid: int | None
    detail: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "up": self.up,
            "address": self.address,
            "pid": self.pid,
            "detail": self.detail,
        }


class Component(abc.ABC):
    """One embedded service run as one process under the stack's data dir."""

    name: str = ""
    ready_timeout_s: float = 60.0
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 10.0
    """How long it may take to exit after ``stop_signal`` before SIGKILL."""

    def __init__(self, *, run_dir: Path, log_dir: Path) -> None:
        self.run_dir = run_dir
        self.log_dir = log_dir
        self._process: ManagedProcess | None = None

    # --- what each component defines -------------------------------------------------
    @abc.abstractmethod
    def address(self) -> str:
        """Where clients reach it (printed by `up` and `status`)."""

    @abc.abstractmethod
    def port_claims(self) -> list[PortClaim]:
        """Every port it binds, each with the setting that moves it."""

    @abc.abstractmethod
    def spec(self) -> ProcessSpec:
        """How to run it (argv, env, stop signal)."""

    def process_spec(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        user: str | None = None,
    ) -> ProcessSpec:
        """``argv`` run as this component: its name, log, PID file and stop behaviour."""
        return ProcessSpec(
            name=self.name,
            argv=argv,
            log_path=self.log_path,
            pid_path=self.pid_path,
            env=env,
            cwd=cwd,
            user=user,
            stop_signal=self.stop_signal,
            stop_timeout_s=self.stop_timeout_s,
        )

    @abc.abstractmethod
    def probe(self) -> bool:
        """True when it answers on its protocol (cheap; called in a polling loop)."""

    def healthy(self) -> bool:
        """Deeper than ``probe``: does it actually serve? (a broker that accepts TCP but whose
        storage failed does not). Only checked on a component that is already running."""
        return True

    def health_detail(self) -> str:
        """Why ``healthy()`` said no (for `status`)."""
        return ""

    def start_note(self) -> str:
        """Something `up` should tell about the last ``ensure_running`` (empty: nothing)."""
        return ""

    def prepare(self) -> None:  # noqa: B027 - optional hook
        """Before the first start: write configs, init data directories."""

    def setup(self) -> None:  # noqa: B027 - optional hook
        """After every start once ready: idempotent setup (buckets, databases)."""

    # --- shared behaviour ---------------------------------------------------------------
    @property
    def pid_path(self) -> Path:
        return self.run_dir / f"{self.name}.pid"

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def process(self) -> ManagedProcess:
        if self._process is None:
            self._process = ManagedProcess(self.spec())
        return self._process

    def ensure_running(self) -> Outcome:
        proc = self.process
        outcome = Outcome.STARTED
        if proc.running() is not None:
            if not self.probe():
                proc.wait_ready(self.probe, timeout_s=self.ready_timeout_s, what=self.address())
            if self.healthy():
                return Outcome.RUNNING
            proc.stop()
            outcome = Outcome.RESTARTED
        self.pid_path.unlink(missing_ok=True)
        ensure_ports_free(self.name, self.port_claims())
        self.prepare()
        proc.start()
        try:
            proc.wait_ready(self.probe, timeout_s=self.ready_timeout_s, what=self.address())
            self.setup()
        except BaseException:
            proc.stop(timeout_s=5.0)
            raise
        return outcome

    def stop(self) -> bool:
        """Stop it (and everything it started) by PID; True if it was running."""
        return self.process.stop()

    @classmethod
    def stop_recorded(cls, run_dir: Path) -> bool:
        """Stop the process named in this component's PID file, needing no settings at all."""
        spec = ProcessSpec(
            name=cls.name,
            argv=[],
            log_path=run_dir / f"{cls.name}.log",
            pid_path=run_dir / f"{cls.name}.pid",
            stop_signal=cls.stop_signal,
            stop_timeout_s=cls.stop_timeout_s,
        )
        return ManagedProcess(spec).stop()

    def pid(self) -> int | None:
        rec = self.process.running()
        return rec.pid if rec is not None else None

    def status(self) -> ComponentStatus:
        pid = self.pid()
        up = pid is not None and self.probe()
        detail = "" if up else ("not answering" if pid is not None else "not running")
        if up and not self.healthy():
            up, detail = False, self.health_detail() or "unhealthy"
        return ComponentStatus(name=self.name, up=up, address=self.address(), pid=pid, detail=detail)
