"""Hosts as Linux network namespaces, for failure drills on one machine (needs root).

``NetLab`` builds a small LAN: one namespace per host, each with its own address on
192.0.2.0/24 (TEST-NET-1, documentation-only) and a veth link to a bridge that lives in a
switch namespace of its own, so nothing touches the machine's own network. A host is cut off
by taking its link down at the switch (``cut``): its processes keep running but reach nobody,
like a machine whose cable was pulled.

``NetLab.spawn`` starts a process on a host (``ip netns exec``); ``NetLab.kill_all`` kills
whatever still runs in the lab's namespaces (only processes we started can be there).
``Forwarder`` (run in a process on a host) accepts on the host's address and connects to
127.0.0.1, so a server that binds loopback only (the embedded stack's PostgreSQL and
SeaweedFS) serves the LAN unchanged.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Forwarder", "NetLab", "netns_unavailable_reason"]

_SUBNET = "192.0.2"


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def netns_unavailable_reason() -> str | None:
    """Why network namespaces cannot be built here, or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (CI runs as root)"
    probe = f"scprobe{os.getpid() % 100000}"
    try:
        _ip("netns", "add", probe)
    except (RuntimeError, OSError) as exc:
        return f"cannot create a network namespace: {exc}"
    with contextlib.suppress(RuntimeError, OSError):
        _ip("netns", "del", probe)
    return None


@dataclass
class NetLab:
    """Hosts on one switch. ``hosts`` are short names (≤ 4 characters)."""

    hosts: Sequence[str]
    prefix: str = field(default_factory=lambda: f"sc{os.getpid() % 100000}")
    created: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}sw"

    def netns(self, host: str) -> str:
        return f"{self.prefix}{host}"

    def address(self, host: str) -> str:
        return f"{_SUBNET}.{list(self.hosts).index(host) + 1}"

    def _port(self, host: str) -> str:
        return f"{self.prefix}{host}s"  # the switch's end of the host's link

    def build(self) -> NetLab:
        _ip("netns", "add", self.switch)
        self.created.append(self.switch)
        sw = ["-n", self.switch]
        _ip(*sw, "link", "add", "br0", "type", "bridge")
        _ip(*sw, "link", "set", "br0", "up")
        _ip(*sw, "link", "set", "lo", "up")
        for host in self.hosts:
            ns = self.netns(host)
            _ip("netns", "add", ns)
            self.created.append(ns)
            inner, outer = f"{self.prefix}{host}h", self._port(host)
            _ip("link", "add", inner, "type", "veth", "peer", "name", outer)
            _ip("link", "set", inner, "netns", ns)
            _ip("link", "set", outer, "netns", self.switch)
            _ip(*sw, "link", "set", outer, "master", "br0")
            _ip(*sw, "link", "set", outer, "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip("-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", inner)
            _ip("-n", ns, "link", "set", inner, "up")
        return self

    def cut(self, host: str) -> None:
        """Take the host's link down at the switch: nothing gets in or out any more."""
        _ip("-n", self.switch, "link", "set", self._port(host), "down")

    def spawn(self, host: str, argv: Sequence[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        """Start ``argv`` on ``host`` (its own session, so it can be killed as a group)."""
        return subprocess.Popen(
            ["ip", "netns", "exec", self.netns(host), *argv], start_new_session=True, **kwargs
        )

    def kill_all(self) -> list[int]:
        """SIGKILL every process still running in one of the lab's namespaces; their PIDs."""
        killed = []
        for ns in self.created:
            result = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=30)
            for pid in (int(p) for p in result.stdout.split()):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
        return killed

    def destroy(self) -> None:
        self.kill_all()
        for ns in reversed(self.created):
            with contextlib.suppress(RuntimeError, OSError):
                _ip("netns", "del", ns)
        self.created.clear()


class Forwarder:
    """TCP from ``listen_host:port`` to ``127.0.0.1:port`` for each port, on its own loop and thread."""

    def __init__(self, listen_host: str, ports: Sequence[int]) -> None:
        self.listen_host = listen_host
        self.ports = list(ports)
        self._loop = asyncio.new_event_loop()
        self._servers: list[asyncio.Server] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._loop.run_forever, name="forwarder", daemon=True)

    def start(self) -> Forwarder:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(timeout=10)
        return self

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _listen(self) -> None:
        for port in self.ports:
            server = await asyncio.start_server(
                lambda r, w, p=port: self._accepted(r, w, p), self.listen_host, port, reuse_address=True
            )
            self._servers.append(server)

    async def _shutdown(self) -> None:
        for server in self._servers:
            server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        task = asyncio.ensure_future(self._pipe_both(reader, writer, port))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _pipe_both(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            writer.close()
            return
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                w.close()

    @staticmethod
    async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            with contextlib.suppress(OSError):
                writer.write_eof()
