"""A tiny process manager: start a server in its own session, know it by PID, stop it for good.

Each managed process:

* is started with ``start_new_session=True`` (its own session and process group), default
  signal dispositions (a parent started in the background may ignore SIGINT, and children
  would inherit that), stdin from /dev/null and stdout/stderr appended to a log file;
* is recorded in a PID file as ``{"pid", "start_time", "argv"}``: the start time (from
  /proc) guards against a recycled PID, so only the process we started is ever signalled;
* is stopped with its stop signal, then, after a timeout, SIGKILL to its process group and
  to every process of its session or tree that is still alive (no orphans).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from workers.errors import StackError
from workers.stack.procfs import ProcInfo, descendants, pid_alive, proc_info, session_members

__all__ = ["ManagedProcess", "PidRecord", "ProcessSpec", "default_signals", "last_log_line", "wait_until"]


def default_signals() -> None:
    """Default dispositions and an empty signal mask (a ``preexec_fn``: runs in the child between
    fork and exec). An ignored or blocked SIGTERM would otherwise be inherited from whoever
    started us, and the child could not be stopped politely."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
        signal.signal(sig, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


@dataclass(frozen=True, slots=True)
class ProcessSpec:
    """How to run one server process."""

    name: str
    argv: Sequence[str]
    log_path: Path
    pid_path: Path
    env: Mapping[str, str] | None = None
    """Complete environment of the process (None: inherit ours)."""
    cwd: Path | None = None
    user: str | None = None
    """Run as this system user (needs root); None runs as ourselves."""
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout_s: float = 10.0
    """How long the process may take to exit after the stop signal before SIGKILL."""


@dataclass(frozen=True, slots=True)
class PidRecord:
    """What the PID file says: the process identity (PID + start time) and its command."""

    pid: int
    start_time: int
    argv: list[str] = field(default_factory=list)

    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_time)

    def dumps(self) -> str:
        return json.dumps({"pid": self.pid, "start_time": self.start_time, "argv": self.argv})

    @classmethod
    def loads(cls, text: str) -> PidRecord | None:
        try:
            raw = json.loads(text)
            return cls(pid=int(raw["pid"]), start_time=int(raw["start_time"]), argv=list(raw["argv"]))
        except (ValueError, KeyError, TypeError):
            return None


def last_log_line(path: Path, *, limit: int = 300) -> str:
    """The last non-empty line of a log file (for one-line error messages)."""
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 8192))
            tail = fh.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""


def wait_until(predicate: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.1) -> bool:
    """Poll ``predicate`` until it is true or ``timeout_s`` passes; returns the last answer."""
    deadline = time.monotonic() + timeout_s
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval_s)


class ManagedProcess:
    """One server process known by its PID file."""

    def __init__(self, spec: ProcessSpec) -> None:
        self.spec = spec
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    def record(self) -> PidRecord | None:
        """The PID file's record, alive or not; None when there is no readable PID file."""
        try:
            return PidRecord.loads(self.spec.pid_path.read_text())
        except OSError:
            return None

    def running(self) -> PidRecord | None:
        """The record if the recorded process is alive (same PID and start time), else None."""
        rec = self.record()
        return rec if rec is not None and rec.alive() else None

    def start(self) -> PidRecord:
        """Spawn the process and write its PID file. The caller checked it is not running."""
        spec = self.spec
        spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        spec.pid_path.parent.mkdir(parents=True, exist_ok=True)
        user_kwargs: dict[str, object] = {}
        if spec.user is not None:
            entry = pwd.getpwnam(spec.user)
            user_kwargs = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
        with spec.log_path.open("ab") as log:
            log.write(f"\n=== {time.strftime('%Y-%m-%d %H:%M:%S')} start: {' '.join(spec.argv)}\n".encode())
            log.flush()
            try:
                self._popen = subprocess.Popen(
                    list(spec.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=spec.cwd,
                    env=dict(spec.env) if spec.env is not None else None,
                    start_new_session=True,
                    preexec_fn=default_signals,
                    close_fds=True,
                    **user_kwargs,  # type: ignore[call-overload]
                )
            except OSError as exc:
                raise StackError(f"{spec.name}: cannot run {spec.argv[0]}: {exc}") from exc
        info = proc_info(self._popen.pid)
        rec = PidRecord(pid=self._popen.pid, start_time=info.start_time if info else 0, argv=list(spec.argv))
        tmp = spec.pid_path.with_suffix(".tmp")
        tmp.write_text(rec.dumps())
        tmp.replace(spec.pid_path)
        return rec

    def exit_code(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def wait_ready(self, probe: Callable[[], bool], *, timeout_s: float, what: str) -> None:
        """Wait until ``probe()`` is true; fail early, naming the log, if the process exits."""
        rec = self.running() or self.record()

        def ready() -> bool:
            # Ask our Popen first: it collects the exit status before /proc checks could reap it.
            code = self.exit_code()
            if code is not None or (rec is not None and not rec.alive()):
                line = last_log_line(self.spec.log_path)
                raise StackError(
                    f"{self.name} exited during startup"
                    + (f" (exit code {code})" if code is not None else "")
                    + (f": {line!r}" if line else "")
                    + f"; full log: {self.spec.log_path}"
                )
            return probe()

        if not wait_until(ready, timeout_s=timeout_s, interval_s=0.1):
            raise StackError(
                f"{self.name} did not become ready ({what}) within {timeout_s:.0f} s; "
                f"see {self.spec.log_path}"
            )

    def stop(self, *, timeout_s: float | None = None) -> bool:
        """Stop the recorded process and everything it started. True if something was running."""
        rec = self.running()
        if rec is None:
            self.spec.pid_path.unlink(missing_ok=True)
            return False
        stop_tree(
            rec,
            stop_signal=self.spec.stop_signal,
            timeout_s=self.spec.stop_timeout_s if timeout_s is None else timeout_s,
        )
        if self._popen is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._popen.wait(timeout=1)
        self.spec.pid_path.unlink(missing_ok=True)
        return True


def _tree(rec: PidRecord) -> dict[tuple[int, int], ProcInfo]:
    """The leader's session members and descendants, keyed by identity (PID, start time)."""
    procs = [*session_members(rec.pid), *descendants(rec.pid)]
    return {(p.pid, p.start_time): p for p in procs}


def _signal(pid: int, start_time: int, sig: signal.Signals) -> None:
    if pid_alive(pid, start_time):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


def stop_tree(rec: PidRecord, *, stop_signal: signal.Signals, timeout_s: float) -> None:
    """Signal the leader, wait, then SIGKILL whatever of its session or tree is left."""
    tree = _tree(rec)
    _signal(rec.pid, rec.start_time, stop_signal)
    wait_until(lambda: not rec.alive(), timeout_s=timeout_s, interval_s=0.1)
    # Children started during shutdown, and orphans that kept the session id.
    tree.update(_tree(rec))
    tree.update({(p.pid, p.start_time): p for p in session_members(rec.pid)})
    leftovers = [key for key in tree if pid_alive(*key)]
    if not rec.alive() and leftovers:
        # The leader exited cleanly; give stragglers a polite signal and a moment first.
        for pid, start in leftovers:
            _signal(pid, start, signal.SIGTERM)
        wait_until(lambda: not any(pid_alive(*k) for k in leftovers), timeout_s=3.0)
    if rec.alive():
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(rec.pid, signal.SIGKILL)
        _signal(rec.pid, rec.start_time, signal.SIGKILL)
    for pid, start in tree:
        _signal(pid, start, signal.SIGKILL)
    if not wait_until(lambda: not rec.alive() and not any(pid_alive(*k) for k in tree), timeout_s=5.0):
        survivors = [pid for pid, start in tree if pid_alive(pid, start)]
        raise StackError(f"process {rec.pid} or its children {survivors} survived SIGKILL")
