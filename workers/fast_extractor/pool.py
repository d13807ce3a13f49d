"""Extraction off the daemon's event loop: a pool of extraction processes with a per-page deadline.

Parsing and scoring a page is CPU work in C and Python that no coroutine can interrupt;
on the daemon's event loop a hostile page (a 100,000-level DOM costs minutes in the HTML
tree builder) would stop heartbeats and commits until the group rebalances. So each page
goes to an extraction process (``python -m workers.fast_extractor.child``) over a pipe,
as the record value exactly as consumed (no re-encoding), and comes back as the encoded
ProcessedPage. A process that spends more than ``page_deadline_s`` of CPU time on one page,
or ``page_wall_deadline_s`` of wall-clock time whatever its CPU, is killed (by its PID) and
replaced, and the page fails with an ExtractionError that says so. The deadline counts CPU
seconds, not wall seconds, because on a loaded machine a large honest page waits for a core
for longer than it computes: a wall-clock deadline alone dead-letters it for the machine's
load, not for the page (a 6 MB page under a full 2-core crawl did). A process
that dies on a page is replaced and the page fails the same way (dead-lettered, permanent:
the same bytes would kill it again). Processes are not threads because a thread stuck in
C code cannot be stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from dataclasses import dataclass
from typing import Final

import psutil

from workers.errors import ExtractionError, MessageDecodeError, StackError
from workers.fast_extractor.frames import ERROR_DECODE, OK, REPLY_HEAD, U32, pack_request

__all__ = ["Extracted", "ExtractionPool"]

log = logging.getLogger(__name__)
_STREAM_LIMIT: Final = 256 * 1024 * 1024
_KILL_WAIT_S: Final = 5.0
_START_TIMEOUT_S: Final = 120.0
"""A new process imports numpy, selectolax, CLD2 …: seconds on a loaded machine."""


class _Overrun(Exception):
    """A page spent its extraction deadline (the message says which)."""


@dataclass(frozen=True, slots=True)
class Extracted:
    """One page's reply: the encoded ProcessedPage and its Kafka key."""

    value: bytes
    key: bytes


class _Process:
    """One extraction process and its pipes."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        self.stdin = proc.stdin
        self.stdout = proc.stdout
        self._ps: psutil.Process | None = None

    @classmethod
    async def start(cls) -> _Process:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "workers.fast_extractor.child",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            limit=_STREAM_LIMIT,
            env=os.environ.copy(),
        )
        return cls(proc)

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the process has used so far; 0.0 once it is gone."""
        try:
            if self._ps is None:
                self._ps = psutil.Process(self.proc.pid)  # once: the constructor reads /proc twice
            times = self._ps.cpu_times()
        except psutil.Error:
            return 0.0
        return float(times.user + times.system)

    async def ready(self) -> None:
        """Wait for the process's first (empty) reply: it has imported everything."""
        await self.reply()

    async def ask(self, value: bytes) -> tuple[int, bytes, bytes]:
        self.stdin.write(pack_request(value))
        await self.stdin.drain()
        return await self.reply()

    async def reply(self) -> tuple[int, bytes, bytes]:
        status, key_size = REPLY_HEAD.unpack(await self.stdout.readexactly(REPLY_HEAD.size))
        key = await self.stdout.readexactly(key_size) if key_size else b""
        (size,) = U32.unpack(await self.stdout.readexactly(U32.size))
        payload = await self.stdout.readexactly(size) if size else b""
        return status, key, payload

    async def stop(self, *, kill: bool) -> int | None:
        """End the process: close its input (it exits), or kill it; returns its exit code."""
        proc = self.proc
        if proc.returncode is None:
            if kill:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
            else:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    self.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), _KILL_WAIT_S)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                await proc.wait()
        return proc.returncode


class ExtractionPool:
    """``processes`` extraction processes; :meth:`extract` hands one record to an idle one."""

    def __init__(self, *, processes: int, deadline_s: float, wall_deadline_s: float | None = None) -> None:
        if processes < 1:
            raise ValueError("processes must be >= 1")
        self.size = processes
        self.deadline_s = deadline_s
        """CPU seconds one page may cost its extraction process."""
        self.wall_deadline_s = wall_deadline_s if wall_deadline_s is not None else 6 * deadline_s
        """Wall-clock seconds one page may take, however little CPU it got."""
        self._idle: asyncio.Queue[_Process] = asyncio.Queue()
        self._all: set[_Process] = set()
        self.replaced = 0
        """Processes killed or lost and replaced (deadline overruns and crashes)."""
        self._closing = False

    async def start(self) -> None:
        await asyncio.gather(*(self._spawn() for _ in range(self.size)))

    async def _spawn(self) -> None:
        try:
            process = await _Process.start()
        except OSError as exc:
            raise StackError(f"cannot start an extraction process: {exc}") from exc
        try:
            await asyncio.wait_for(process.ready(), _START_TIMEOUT_S)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await process.stop(kill=True)
            raise StackError(f"extraction process did not start (exit code {code})") from exc
        self._all.add(process)
        self._idle.put_nowait(process)

    async def close(self) -> None:
        self._closing = True
        processes, self._all = self._all, set()
        await asyncio.gather(*(p.stop(kill=False) for p in processes))

    def pids(self) -> list[int]:
        return [p.proc.pid for p in self._all]

    async def extract(self, value: bytes) -> Extracted:
        """The encoded ProcessedPage of one ``process.fast`` record value.

        Raises MessageDecodeError for an undecodable record, ExtractionError when the page
        cannot be extracted, overruns the deadline or kills its process."""
        process = await self._idle.get()
        try:
            status, key, payload = await self._ask_in_time(process, value)
        except _Overrun as overrun:
            await self._replace(process, kill=True)
            raise ExtractionError(f"{overrun}; the extraction process was killed and replaced") from None
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            code = await self._replace(process, kill=True)
            raise ExtractionError(
                f"the extraction process died on this page (exit code {code}); it was replaced"
            ) from exc
        except BaseException:  # cancelled mid-request: its reply would confuse the next page
            self._all.discard(process)
            await asyncio.shield(process.stop(kill=True))
            if not self._closing:
                await self._spawn()
            raise
        self._idle.put_nowait(process)
        if status == OK:
            return Extracted(value=payload, key=key)
        message = payload.decode("utf-8", "replace")
        raise MessageDecodeError(message) if status == ERROR_DECODE else ExtractionError(message)

    async def _ask_in_time(self, process: _Process, value: bytes) -> tuple[int, bytes, bytes]:
        """The process's reply, or _Overrun once it has spent the CPU or the wall-clock deadline.

        The CPU time is read each time the CPU budget left could have been spent (a process
        uses at most one core), so the check costs nothing while pages are quick."""
        loop = asyncio.get_running_loop()
        started, cpu0 = loop.time(), process.cpu_s()
        reply = asyncio.ensure_future(process.ask(value))
        cpu = elapsed = 0.0
        try:
            while True:
                slice_s = max(0.05, min(self.deadline_s - cpu, self.wall_deadline_s - elapsed))
                done, _ = await asyncio.wait({reply}, timeout=slice_s)
                if done:
                    return reply.result()
                cpu = process.cpu_s() - cpu0 if cpu0 else 0.0
                elapsed = loop.time() - started
                if cpu >= self.deadline_s:
                    raise _Overrun(
                        f"extraction exceeded its {self.deadline_s:g} s CPU deadline (page_deadline_s)"
                    )
                if elapsed >= self.wall_deadline_s:
                    raise _Overrun(
                        f"extraction exceeded its {self.wall_deadline_s:g} s wall-clock deadline "
                        f"(page_wall_deadline_s) after {cpu:.1f} s of CPU"
                    )
        finally:
            if not reply.done():
                reply.cancel()
                with contextlib.suppress(
                    asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError
                ):
                    await reply

    async def _replace(self, process: _Process, *, kill: bool) -> int | None:
        self._all.discard(process)
        code = await process.stop(kill=kill)
        self.replaced += 1
        log.warning("extraction process %d replaced (exit code %s)", process.proc.pid, code)
        await self._spawn()
        return code
