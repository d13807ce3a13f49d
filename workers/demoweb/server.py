"""Starting and stopping the demo web: in the caller's event loop, or as worker processes.

``processes=0`` (the default) serves from the caller's event loop: cheapest for tests.
``processes=N`` runs ``python -m workers.demoweb serve --processes N`` as a child process
tree (N server processes sharing one port with SO_REUSEPORT), so the server's CPU is
not the caller's: what a benchmark wants.

::

    async with DemoWeb(port=0) as web:          # or: web = await start_demoweb(); ...; await web.stop()
        url = f"{web.base_url('site-001.demo.test')}/article/1"
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import signal
import socket
import sys
import tempfile
from pathlib import Path
from types import TracebackType

from aiohttp import web

from workers.demoweb.app import DemoWebConfig, make_app
from workers.errors import StackError

__all__ = ["DemoWeb", "bind_socket", "config_argv", "start_demoweb"]

_START_TIMEOUT_S = 30.0


def bind_socket(
    port: int, *, host: str = "127.0.0.1", reuse_port: bool = False, listen: bool = True
) -> socket.socket:
    """A TCP socket bound to host:port (0 = a free port chosen by the OS)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise StackError(f"demo web: cannot bind {host}:{port}: {exc}") from exc
    if listen:
        sock.listen(1024)
    sock.setblocking(False)
    return sock


async def serve_socket(config: DemoWebConfig, sock: socket.socket) -> web.AppRunner:
    """Serve the demo web on an already bound socket in the running loop; returns the runner."""
    runner = web.AppRunner(make_app(config), access_log=None, handle_signals=False)
    await runner.setup()
    await web.SockSite(runner, sock, shutdown_timeout=1.0, backlog=1024).start()
    return runner


def config_argv(config: DemoWebConfig) -> list[str]:
    """CLI flags reproducing ``config`` (``--link-hosts 60 ...``); None fields are left out."""
    argv: list[str] = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if value is not None:
            argv += ["--" + f.name.replace("_", "-"), str(value)]
    return argv


class DemoWeb:
    """A running demo web. ``port`` is the one port every host is served on."""

    def __init__(self, *, port: int = 0, processes: int = 0, config: DemoWebConfig | None = None) -> None:
        self.config = config or DemoWebConfig()
        self.processes = processes
        self.port = port
        self._requested_port = port
        self._runner: web.AppRunner | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None

    def base_url(self, host: str) -> str:
        """``http://host:port`` for a demo host name."""
        return f"http://{host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """PID of the server process tree's parent (processes >= 1), else None."""
        return self._proc.pid if self._proc else None

    async def start(self) -> DemoWeb:
        if self._runner is not None or self._proc is not None:
            return self
        if self.processes <= 0:
            sock = bind_socket(self._requested_port)
            self.port = sock.getsockname()[1]
            self._runner = await serve_socket(self.config, sock)
        else:
            await self._start_processes()
        return self

    async def _start_processes(self) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="demoweb-")
        port_file = Path(self._tmp.name) / "port"
        argv = [
            sys.executable,
            "-m",
            "workers.demoweb",
            "serve",
            "--port",
            str(self._requested_port),
            "--processes",
            str(self.processes),
            "--port-file",
            str(port_file),
            *config_argv(self.config),
        ]
        self._proc = await asyncio.create_subprocess_exec(*argv, stdin=asyncio.subprocess.DEVNULL)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _START_TIMEOUT_S
        while not port_file.exists():
            if self._proc.returncode is not None or loop.time() > deadline:
                await self.stop()
                raise StackError(f"demo web processes did not start (argv: {' '.join(argv)})")
            await asyncio.sleep(0.05)
        self.port = int(port_file.read_text().strip())

    async def stop(self) -> None:
        """Stop serving; idempotent. Child processes get SIGTERM, then SIGKILL after 10 s."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(proc.wait(), 10.0)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            tmp.cleanup()

    async def __aenter__(self) -> DemoWeb:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()


async def start_demoweb(
    *,
    port: int = 0,
    processes: int = 0,
    data_dir: Path | str | None = None,
    config: DemoWebConfig | None = None,
) -> DemoWeb:
    """Start the demo web and return it (``.port``, ``.base_url(host)``, ``await .stop()``).

    ``port=0`` asks the OS for a free port. ``processes=0`` serves in this event loop;
    ``processes=N`` starts N server processes. ``data_dir`` overrides ``config.data_dir``.
    """
    config = config or DemoWebConfig()
    if data_dir is not None:
        config = dataclasses.replace(config, data_dir=Path(data_dir))
    return await DemoWeb(port=port, processes=processes, config=config).start()
