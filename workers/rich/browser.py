"""Chromium lifecycle for the rich renderer: one browser process we start, watch and kill.

Why we start Chromium ourselves (and let Crawl4AI drive it over CDP) instead of letting
Playwright launch it: we own the process, so we know its PID, make it die with us and
measure its memory.

No leaked browsers, in three layers:

1. Chromium runs in our process group (supervisord's ``stopasgroup``/``killasgroup`` reach
   it) with ``PR_SET_PDEATHSIG=SIGKILL`` (set by ``setpriv --pdeathsig``, so no Python
   runs between fork and exec; it survives the ``exec`` of Debian's /usr/bin/chromium
   wrapper into the real binary, same PID): if our process dies, even by SIGKILL, the
   kernel kills the browser, and its zygotes, renderers and utility processes exit with
   it (measured: all 9 gone within 0.2 s of a SIGKILL of the browser process).
2. Each running renderer holds an ``flock`` on its profile slot ``<data_dir>/browser-N``.
   The kernel releases the lock when the owner dies, so a slot whose lock we can take has
   no live owner, and any process still using its ``--user-data-dir`` is an orphan.
3. At start-up, before launching, :func:`kill_orphans` kills those orphans: processes from
   the slot's PID file plus a scan of the process table, but only processes whose command
   line carries exactly our ``--user-data-dir=`` argument. Never by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import psutil

from workers.errors import ConfigError, StackError
from workers.rich.devtools import browser_ws_url
from workers.rich.memory import TreeMemory, tree_memory

__all__ = [
    "BASE_FLAGS",
    "ChromiumProcess",
    "ProfileSlot",
    "check_executable",
    "kill_orphans",
    "orphan_processes",
    "resolver_rules",
]

log = logging.getLogger(__name__)

BASE_FLAGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-default-apps",
    "--mute-audio",
    "--disable-dev-shm-usage",  # small /dev/shm in containers crashes tabs
    # Pages share one headless browser: none of them may be throttled as "background".
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
    # Bounded process count (measured: 40 renderer processes after 80 article pages with
    # both on, 7 with both off): no back/forward cache of pages we never go back to, and
    # no process per cross-site iframe (the browser holds no user data to isolate).
    # The other features: no HTTPS upgrade of our http:// navigations (the document is
    # served at the URL the ingestor fetched), and less of Chromium's own background
    # traffic (optimization hints, network time, search preconnects, media router,
    # autofill queries), as Playwright's launcher does.
    "--disable-features=BackForwardCache,HttpsUpgrades,HttpsFirstBalancedModeAutoEnable,"
    "OptimizationHints,NetworkTimeServiceQuerying,AimEnabled,PreconnectToSearch,MediaRouter,"
    "AvoidCorsURLLoaderRestartOnRedirect,AutofillServerCommunication",
    "--enable-features=SkipListAccountsWithoutGaiaCookies",
    "--disable-site-isolation-trials",
    "--disable-field-trial-config",
    "--disable-breakpad",
    "--disable-component-extensions-with-background-pages",
    "--disable-domain-reliability",
    "--no-service-autorun",
    "--metrics-recording-only",
    "--password-store=basic",
    # A page that allocates without bound crashes its own tab at 512 MB of JS heap
    # instead of growing the browser towards the RSS limit.
    "--js-flags=--max-old-space-size=512",
)
"""Flags of every browser we start (plus --user-data-dir, the DevTools port and isolation.py's flags)."""

MISSING_HINT = "install chromium: apt-get install -y chromium, or set STREAMCRAWL_RENDERER_CHROMIUM_PATH"
MAX_SLOTS = 64


def resolver_rules(overrides: Mapping[str, str] | None) -> str | None:
    """Chromium ``--host-resolver-rules`` from ``{"*.demo.test": "127.0.0.1"}`` (first match wins).

    A value of ``~NOTFOUND`` makes the pattern fail to resolve (``{"*": "~NOTFOUND"}`` last, so
    nothing leaves the machine). The renderer's own browser resolves nothing at all (see
    isolation.py); this is for a browser driven without our guard (the bench's baseline).
    """
    if not overrides:
        return None
    rules = []
    for pattern, target in overrides.items():
        if not pattern or not target or any(c in pattern + target for c in ", \t\n"):
            raise ConfigError(f"invalid resolver override {pattern!r} -> {target!r}")
        rules.append(f"MAP {pattern} {target}")
    return ", ".join(rules)


def check_executable(path: Path) -> None:
    """Raise ConfigError (saying how to install it) unless ``path`` is an executable file."""
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ConfigError(f"Chromium not found at {path}: {MISSING_HINT}")


# --- profile slots, PID file, orphans ----------------------------------------------------


class ProfileSlot:
    """An exclusively locked ``<data_dir>/browser-N`` directory: the browser's profile and PID file.

    Two renderers sharing a data dir get different slots, so one never kills the other's
    browser; a renderer restarted after a crash takes a free slot and cleans it first.
    """

    def __init__(self, root: Path, index: int, lock: IO[str]) -> None:
        self.root = root
        self.index = index
        self._lock: IO[str] | None = lock

    @property
    def user_data_dir(self) -> Path:
        return self.root / "profile"

    @property
    def pid_file(self) -> Path:
        return self.root / "chromium.pid"

    @classmethod
    def acquire(cls, data_dir: Path) -> ProfileSlot:
        """Lock the first free slot; orphans of every other free slot are killed on the way."""
        data_dir.mkdir(parents=True, exist_ok=True)
        chosen: ProfileSlot | None = None
        for index in range(MAX_SLOTS):
            root = data_dir / f"browser-{index}"
            if chosen is not None and not root.exists():
                break
            root.mkdir(exist_ok=True)
            lock = _try_lock(root / "owner.lock")
            if lock is None:
                continue  # a live renderer owns it
            slot = cls(root, index, lock)
            killed = kill_orphans(slot.user_data_dir, pid_file=slot.pid_file)
            if killed:
                log.warning("killed %d orphaned Chromium processes of %s: %s", len(killed), root, killed)
            if chosen is None:
                chosen = slot
            else:
                slot.release()
        if chosen is None:
            raise StackError(f"all {MAX_SLOTS} browser slots under {data_dir} are locked by live renderers")
        return chosen

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the descriptor drops the flock
            self._lock = None


def _try_lock(path: Path) -> IO[str] | None:
    handle = path.open("a+")  # the open descriptor *is* the lock
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        return None
    return handle


def _matches(proc: psutil.Process, flag: str) -> bool:
    try:
        return flag in proc.cmdline()
    except psutil.Error:
        return False


def orphan_processes(user_data_dir: Path, *, pid_file: Path | None = None) -> list[psutil.Process]:
    """Live processes whose command line holds exactly ``--user-data-dir=<user_data_dir>``."""
    flag = f"--user-data-dir={user_data_dir}"
    me = os.getpid()
    found: dict[int, psutil.Process] = {}
    for pid in _pid_file_pids(pid_file):
        with contextlib.suppress(psutil.Error):
            proc = psutil.Process(pid)
            if pid != me and _matches(proc, flag):
                found[pid] = proc
    for proc in psutil.process_iter():
        if proc.pid != me and proc.pid not in found and _matches(proc, flag):
            found[proc.pid] = proc
    return list(found.values())


def kill_orphans(user_data_dir: Path, *, pid_file: Path | None = None, timeout_s: float = 5.0) -> list[int]:
    """SIGKILL every process using ``user_data_dir`` (see :func:`orphan_processes`); returns their PIDs."""
    procs = orphan_processes(user_data_dir, pid_file=pid_file)
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(procs, timeout=timeout_s)
    if pid_file is not None:
        pid_file.unlink(missing_ok=True)
    return [p.pid for p in procs]


def _pid_file_pids(pid_file: Path | None) -> list[int]:
    if pid_file is None:
        return []
    try:
        data = json.loads(pid_file.read_text())
        return [int(p) for p in data.get("pids", [])]
    except (OSError, ValueError, TypeError, AttributeError):
        return []


# --- the browser process -----------------------------------------------------------------


class ChromiumProcess:
    """One headless Chromium with a DevTools endpoint on 127.0.0.1 (an OS-chosen port)."""

    def __init__(
        self,
        *,
        executable: Path,
        slot: ProfileSlot,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.executable = executable
        self.slot = slot
        self.extra_args = tuple(extra_args)
        self.cdp_url: str | None = None
        self.ws_url: str | None = None
        """The browser's DevTools WebSocket endpoint (``ws://127.0.0.1:<port>/devtools/browser/<id>``)."""
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def command(self) -> list[str]:
        args = [
            *BASE_FLAGS,
            f"--user-data-dir={self.slot.user_data_dir}",
            "--remote-debugging-address=127.0.0.1",
            "--remote-debugging-port=0",
        ]
        args.extend(self.extra_args)
        args.append("about:blank")
        setpriv = shutil.which("setpriv")
        prefix = [setpriv, "--pdeathsig", "KILL", "--"] if setpriv else []
        return [*prefix, str(self.executable), *args]

    async def start(self, *, timeout_s: float = 30.0) -> str:
        """Launch the browser and return its CDP URL once the DevTools endpoint is up.

        Must run on the thread that stays alive as long as the browser should (the event
        loop's): the parent-death signal fires when the *thread* that forked exits.
        """
        check_executable(self.executable)
        profile = self.slot.user_data_dir
        profile.mkdir(parents=True, exist_ok=True)
        port_file = profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        log_path = self.slot.root / "chromium.log"
        self._proc = self._spawn(log_path)
        self._write_pid_file()
        deadline = time.monotonic() + timeout_s
        while True:
            found = _read_port(port_file)
            if found is not None:
                port, self.ws_url = found
                self.cdp_url = f"http://127.0.0.1:{port}"
                return self.cdp_url
            if self._proc.poll() is not None:
                raise StackError(
                    f"Chromium ({self.executable}) exited with {self._proc.returncode} at start-up; "
                    f"see {log_path}: {_tail(log_path)}"
                )
            if time.monotonic() > deadline:
                await self.stop()
                raise StackError(
                    f"Chromium did not open its DevTools port within {timeout_s:.0f}s; "
                    f"see {log_path}: {_tail(log_path)}"
                )
            await asyncio.sleep(0.02)

    def _spawn(self, log_path: Path) -> subprocess.Popen[bytes]:
        # Deliberately synchronous, on the calling (event-loop) thread: see start().
        command = self.command()
        via_setpriv = command[0] != str(self.executable)
        with log_path.open("wb") as log_file:  # truncated at each start: bounded by recycling
            return subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                close_fds=True,
                preexec_fn=None if via_setpriv else _die_with_parent,
            )

    def _write_pid_file(self) -> None:
        assert self._proc is not None
        data = {
            "owner_pid": os.getpid(),
            "pgid": os.getpgid(0),
            "pids": [self._proc.pid],
            "user_data_dir": str(self.slot.user_data_dir),
            "started_at": time.time(),
        }
        tmp = self.slot.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.slot.pid_file)

    def tree_pids(self) -> list[int]:
        """PIDs of the browser and its live descendants (empty when not running)."""
        if not self.alive or self.pid is None:
            return []
        with contextlib.suppress(psutil.Error):
            root = psutil.Process(self.pid)
            return [root.pid, *(child.pid for child in root.children(recursive=True))]
        return []

    def memory(self) -> TreeMemory:
        """Memory of the browser's process tree (blocking; see :func:`tree_memory`)."""
        pid = self.pid
        if pid is None or not self.alive:
            return TreeMemory(0, 0, 0)
        return tree_memory(pid)

    async def stop(self, *, grace_s: float = 3.0) -> None:
        """SIGTERM the browser, SIGKILL it after ``grace_s``, then kill any straggler of its profile."""
        proc, self._proc, self.cdp_url = self._proc, None, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.to_thread(proc.wait), grace_s)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await asyncio.to_thread(proc.wait)
        await asyncio.to_thread(kill_orphans, self.slot.user_data_dir, pid_file=self.slot.pid_file)


def _die_with_parent() -> None:  # pragma: no cover - only without setpriv
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _read_port(port_file: Path) -> tuple[int, str] | None:
    """(port, browser WebSocket URL) from ``DevToolsActivePort``; None until Chromium wrote both lines."""
    try:
        text = port_file.read_text()
    except OSError:
        return None
    ws_url = browser_ws_url(text)  # it checks the port line too
    return (int(text.split("\n", 1)[0]), ws_url) if ws_url is not None else None


def _tail(path: Path, limit: int = 600) -> str:
    try:
        return path.read_bytes()[-limit:].decode("utf-8", "replace").strip()
    except OSError:
        return ""
