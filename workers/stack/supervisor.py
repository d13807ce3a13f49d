"""supervisord running the hot-path workers, with everything kept under the data dir.

The config is rendered to ``<data dir>/supervisor/supervisord.conf`` with its socket,
pidfile and logs beside it (never /tmp) and an XML-RPC interface on
127.0.0.1:STREAMCRAWL_SUPERVISOR_PORT protected by a generated password (kept in that
directory, mode 0600). supervisord inherits the parsed settings as STREAMCRAWL_* variables,
so every worker sees the same configuration as ``streamcrawl up``.

A worker that cannot start (e.g. not written yet) does not fail ``up``: supervisord runs,
and ``status`` shows the program's state (BACKOFF, FATAL, ...).

**No orphans.** Every process supervisord starts inherits ``STREAMCRAWL_STACK_OWNER=<data
dir>`` in its environment, and each worker asks the kernel for SIGTERM when supervisord
dies (workers/lifecycle/runner.py). If supervisord was killed anyway and a worker (or its
Chromium) survived, ``up`` finds the processes carrying this data dir's mark before it
starts a new supervisord and stops them (SIGTERM, then SIGKILL after stopwaitsecs), so
exactly one set runs; ``down`` does the same after stopping supervisord, so none is left.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import secrets
import shlex
import signal
import sys
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workers.settings import ApiSettings, Settings, StackSettings
from workers.stack.component import Component, Outcome
from workers.stack.environment import settings_env
from workers.stack.paths import StackPaths, project_root, venv_binary
from workers.stack.ports import LOCALHOST, PortClaim, env_name
from workers.stack.process import ProcessSpec, wait_until
from workers.stack.procfs import ProcInfo, descendants, marked_processes, pid_alive

__all__ = [
    "API_PROGRAM",
    "LAG_EXPORTER_PROGRAM",
    "PROGRAMS",
    "STACK_OWNER_ENV",
    "Program",
    "ProgramState",
    "Supervisor",
    "orphans",
    "render_config",
    "stop_orphans",
]

STACK_OWNER_ENV = "STREAMCRAWL_STACK_OWNER"
"""Marks every process of one stack's supervisord with its data dir (not a setting)."""

_RPC_USER = "streamcrawl"
# Workers drain within STREAMCRAWL_WORKER_DRAIN_TIMEOUT_S (8 s) and then close their clients;
# supervisord allows 12 s before SIGKILL, and `streamcrawl down` gives supervisord 15 s, so
# that with the later waves (broker/PostgreSQL, then S3) the whole stack stops within 30 s.
_STOPWAITSECS = 12


@dataclass(frozen=True, slots=True)
class Program:
    name: str
    module: str
    numprocs: int = 1
    kill_as_group: bool = False
    """Stop and kill the whole process group (the renderer's Chromium children)."""


LAG_EXPORTER_PROGRAM = Program("lag_exporter", "workers.observability.lag_exporter")
"""Consumer lag per group and partition for Prometheus (not a stage: it consumes nothing)."""

API_PROGRAM = Program("api", "workers.api")
"""The read API (not a stage: it consumes nothing); runs when ``STREAMCRAWL_API_ENABLED``."""

PROGRAMS: tuple[Program, ...] = (
    Program("ingestor", "workers.ingestor"),
    Program("router", "workers.router"),
    Program("fast_extractor", "workers.fast_extractor", numprocs=2),
    Program("rich_renderer", "workers.rich_renderer", kill_as_group=True),
    Program("storage_writer", "workers.storage_writer"),
    Program("discovery", "workers.discovery"),
    LAG_EXPORTER_PROGRAM,
    API_PROGRAM,
)


@dataclass(frozen=True, slots=True)
class ProgramState:
    name: str
    group: str
    state: str
    pid: int | None
    description: str

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "group": self.group,
            "state": self.state,
            "pid": self.pid,
            "description": self.description,
        }


def _esc(value: str | os.PathLike[str]) -> str:
    """Escape a literal for supervisord's %-interpolation."""
    return str(value).replace("%", "%%")


def orphans(root: Path, *, supervisor_pid: int | None = None) -> list[ProcInfo]:
    """Processes marked with this data dir that the running supervisord (if any) did not start."""
    owned: set[int] = set()
    if supervisor_pid is not None:
        owned = {supervisor_pid, *(p.pid for p in descendants(supervisor_pid))}
    return [p for p in marked_processes(STACK_OWNER_ENV, str(root)) if p.pid not in owned]


def stop_orphans(root: Path, *, supervisor_pid: int | None = None, timeout_s: float = _STOPWAITSECS) -> int:
    """SIGTERM the orphans of ``root``, SIGKILL whatever is left after ``timeout_s``; how many there were."""
    found = orphans(root, supervisor_pid=supervisor_pid)
    for proc in found:
        if pid_alive(proc.pid, proc.start_time):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGTERM)
    wait_until(lambda: not any(pid_alive(p.pid, p.start_time) for p in found), timeout_s=timeout_s)
    for proc in found:
        if pid_alive(proc.pid, proc.start_time):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(proc.pid, signal.SIGKILL)
    wait_until(lambda: not any(pid_alive(p.pid, p.start_time) for p in found), timeout_s=5.0)
    return len(found)


def render_config(
    *,
    stack: StackSettings,
    paths: StackPaths,
    password: str,
    python: str,
    max_crashes: int = 3,
    api_enabled: bool = True,
) -> str:
    sup = paths.supervisor
    sock = sup / "supervisor.sock"
    lines = [
        "; Rendered by `streamcrawl up`; edits are overwritten on the next start.",
        "[supervisord]",
        "nodaemon=true",
        "silent=true",
        f"logfile={_esc(sup / 'supervisord.log')}",
        "logfile_maxbytes=10MB",
        "logfile_backups=2",
        f"pidfile={_esc(sup / 'supervisord.pid')}",
        f"childlogdir={_esc(sup / 'logs')}",
        f"directory={_esc(project_root())}",
        "",
        "[unix_http_server]",
        f"file={_esc(sock)}",
        "chmod=0700",
        "",
        "[inet_http_server]",
        f"port={LOCALHOST}:{stack.supervisor_port}",
        f"username={_RPC_USER}",
        f"password={password}",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=http://{LOCALHOST}:{stack.supervisor_port}",
        f"username={_RPC_USER}",
        f"password={password}",
    ]
    for program in PROGRAMS:
        if program.name == "rich_renderer" and not stack.start_rich_renderer:
            continue
        if program.name == API_PROGRAM.name and not api_enabled:
            continue
        lines += [
            "",
            f"[program:{program.name}]",
            f"command={_esc(shlex.join([python, '-m', program.module]))}",
            "process_name=%(program_name)s_%(process_num)d",
            f"numprocs={program.numprocs}",
            f"directory={_esc(project_root())}",
            "autostart=true",
            "autorestart=true",
            "startsecs=5",
            # A record that kills its worker costs max_crashes + 2 quick deaths before it is
            # dead-lettered (workers/lifecycle/crashes.py): never give up on a program before.
            f"startretries={max(6, max_crashes + 4)}",
            "stopsignal=TERM",
            f"stopwaitsecs={_STOPWAITSECS}",
            "redirect_stderr=true",
            f"stdout_logfile={_esc(sup / 'logs')}/%(program_name)s_%(process_num)d.log",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=3",
            'environment=PYTHONUNBUFFERED="1",PYTHONFAULTHANDLER="1",STREAMCRAWL_METRICS_PROCESS_INDEX="%(process_num)d"',
        ]
        if program.kill_as_group:
            lines += ["stopasgroup=true", "killasgroup=true"]
    return "\n".join(lines) + "\n"


class _TimeoutTransport(xmlrpc.client.Transport):
    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._timeout_s = timeout_s

    def make_connection(self, host: Any) -> http.client.HTTPConnection:
        conn = super().make_connection(host)
        conn.timeout = self._timeout_s
        return conn


class Supervisor(Component):
    name = "supervisord"
    ready_timeout_s = 30.0
    stop_signal = signal.SIGTERM
    stop_timeout_s = float(_STOPWAITSECS + 3)

    def __init__(self, *, settings: Settings, paths: StackPaths) -> None:
        super().__init__(run_dir=paths.run, log_dir=paths.logs)
        self.settings = settings
        self.paths = paths
        self.orphans_stopped = 0
        """Orphaned workers of an earlier supervisord that the last ``ensure_running`` stopped."""

    @property
    def port(self) -> int:
        return self.settings.stack.supervisor_port

    @property
    def config_path(self) -> Path:
        return self.paths.supervisor / "supervisord.conf"

    def address(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def port_claims(self) -> list[PortClaim]:
        claims = [PortClaim(self.port, env_name(StackSettings, "supervisor_port"))]
        if self.settings.api.enabled:
            claims.append(PortClaim(self.settings.api.port, env_name(ApiSettings, "port")))
        return claims

    def _password(self) -> str:
        path = self.paths.supervisor / "rpc-password"
        try:
            return path.read_text().strip()
        except FileNotFoundError:
            self.paths.supervisor.mkdir(parents=True, exist_ok=True)
            password = secrets.token_urlsafe(24)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(password)
            return password

    def prepare(self) -> None:
        (self.paths.supervisor / "logs").mkdir(parents=True, exist_ok=True)
        text = render_config(
            stack=self.settings.stack,
            paths=self.paths,
            password=self._password(),
            python=sys.executable,
            max_crashes=self.settings.worker.max_crashes,
            api_enabled=self.settings.api.enabled,
        )
        fd = os.open(self.config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)

    def spec(self) -> ProcessSpec:
        env = {
            **os.environ,
            **settings_env(self.settings),
            "PYTHONUNBUFFERED": "1",
            "TMPDIR": str(self.paths.tmp),
            STACK_OWNER_ENV: str(self.paths.root),
        }
        return self.process_spec(
            [str(venv_binary("supervisord")), "-c", str(self.config_path)], env=env, cwd=project_root()
        )

    def ensure_running(self) -> Outcome:
        """Start supervisord (after stopping orphans of an earlier one) unless it runs."""
        self.orphans_stopped = 0
        if self.process.running() is None:
            self.orphans_stopped = stop_orphans(self.paths.root)
        return super().ensure_running()

    def start_note(self) -> str:
        n = self.orphans_stopped
        return f"stopped {n} orphaned process{'es' if n != 1 else ''} of an earlier supervisord" if n else ""

    def orphans(self) -> list[ProcInfo]:
        return orphans(self.paths.root, supervisor_pid=self.pid())

    @classmethod
    def stop_recorded(cls, run_dir: Path) -> bool:
        """Stop supervisord by its PID file, then any worker of this data dir that outlived it."""
        stopped = super().stop_recorded(run_dir)
        return stop_orphans(run_dir.parent) > 0 or stopped

    def _rpc(self, timeout_s: float = 3.0) -> Any:
        url = f"http://{_RPC_USER}:{self._password()}@{LOCALHOST}:{self.port}/RPC2"
        return xmlrpc.client.ServerProxy(url, transport=_TimeoutTransport(timeout_s))

    def probe(self) -> bool:
        try:
            state = self._rpc().supervisor.getState()
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return False
        return bool(state.get("statename") == "RUNNING")

    def programs(self) -> list[ProgramState]:
        """Each worker process as supervisord sees it; empty when supervisord is down."""
        try:
            infos = self._rpc().supervisor.getAllProcessInfo()
        except (OSError, xmlrpc.client.Error, http.client.HTTPException):
            return []
        return [
            ProgramState(
                name=str(info["name"]),
                group=str(info["group"]),
                state=str(info["statename"]),
                pid=int(info["pid"]) or None,
                description=str(info.get("description", "")),
            )
            for info in infos
        ]
