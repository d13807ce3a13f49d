"""What /proc says about a process: liveness, start time, session and descendants.

The stack records ``(pid, start time)`` for every process it starts, so a PID that the
kernel recycled for an unrelated process is never mistaken for ours and never signalled.
Linux only (the embedded stack targets Debian).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ProcInfo",
    "descendants",
    "environ_value",
    "marked_processes",
    "pid_alive",
    "proc_info",
    "session_members",
]

_PROC = Path("/proc")


@dataclass(frozen=True, slots=True)
class ProcInfo:
    """The fields of ``/proc/<pid>/stat`` the stack needs."""

    pid: int
    state: str
    ppid: int
    pgid: int
    sid: int
    start_time: int
    """Clock ticks since boot when the process started: with the PID, a unique identity."""

    @property
    def alive(self) -> bool:
        return self.state not in ("Z", "X")


def proc_info(pid: int) -> ProcInfo | None:
    """Parse ``/proc/<pid>/stat``; None when the process does not exist."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or parentheses.
    rest = raw[raw.rfind(")") + 2 :].split()
    try:
        return ProcInfo(
            pid=pid,
            state=rest[0],
            ppid=int(rest[1]),
            pgid=int(rest[2]),
            sid=int(rest[3]),
            start_time=int(rest[19]),
        )
    except (IndexError, ValueError):
        return None


def _reap(pid: int) -> None:
    """Collect the exit status if ``pid`` is our own child, so it does not linger as a zombie."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
    except OSError:
        pass


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, when given, started at ``start_time``."""
    if pid <= 0:
        return False
    _reap(pid)
    info = proc_info(pid)
    if info is None or not info.alive:
        return False
    return start_time is None or info.start_time == start_time


def _all_processes() -> list[ProcInfo]:
    out: list[ProcInfo] = []
    for entry in _PROC.iterdir():
        if entry.name.isdigit():
            info = proc_info(int(entry.name))
            if info is not None and info.alive:
                out.append(info)
    return out


def session_members(sid: int) -> list[ProcInfo]:
    """Live processes of session ``sid`` (every process the stack starts leads its own session)."""
    return [p for p in _all_processes() if p.sid == sid]


def descendants(pid: int) -> list[ProcInfo]:
    """Live children, grandchildren, ... of ``pid`` (even those that left its session)."""
    procs = _all_processes()
    children: dict[int, list[ProcInfo]] = {}
    for p in procs:
        children.setdefault(p.ppid, []).append(p)
    out: list[ProcInfo] = []
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            out.append(child)
            stack.append(child.pid)
    return out


def environ_value(pid: int, name: str) -> str | None:
    """The value of ``name`` in the environment ``pid`` was started with (None if unreadable)."""
    try:
        raw = (_PROC / str(pid) / "environ").read_bytes()
    except OSError:
        return None
    prefix = name.encode() + b"="
    for entry in raw.split(b"\0"):
        if entry.startswith(prefix):
            return entry[len(prefix) :].decode("utf-8", "replace")
    return None


def marked_processes(name: str, value: str) -> list[ProcInfo]:
    """Live processes started with ``name=value`` in their environment (children inherit it)."""
    me = os.getpid()
    return [p for p in _all_processes() if p.pid != me and environ_value(p.pid, name) == value]
