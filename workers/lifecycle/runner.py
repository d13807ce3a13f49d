"""Entry-point glue: parse settings once, configure logs, run a worker until SIGTERM/SIGINT.

Also what makes a worker process safe to supervise:

* **it dies with its supervisor**: the kernel sends it SIGTERM when its parent exits
  (``prctl(PR_SET_PDEATHSIG)``), so a supervisord killed with -9 leaves no workers behind
  holding partitions and metrics ports (they drain and exit as on a normal stop);
* **a blocked event loop is noticed**: a watchdog thread kills the process when the loop
  has not ticked for ``STREAMCRAWL_WORKER_LOOP_BLOCK_EXIT_S`` (a record hogging the CPU),
  which the lifecycle then counts against that record like any crash;
* **its exit status means something**: 0 after a requested stop, ``EXIT_UNHEALTHY`` when it
  gave up because it held no partitions or made no progress (supervisord restarts it).
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable

from workers.observability.health import HealthState
from workers.observability.logs import configure_logging
from workers.settings import Settings

__all__ = ["die_with_parent", "release_free_heap", "run_worker", "start_watchdog"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask the kernel to send ``sig`` to this process when its parent exits (Linux only)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return None
    return trim


def release_free_heap() -> None:
    """Give the C heap's free pages back to the kernel (glibc ``malloc_trim``; a no-op elsewhere).

    For a stage whose batches allocate and free a large working set: glibc keeps freed pages
    mapped, so without this the RSS drifts up with fragmentation long after the work is gone.
    Costs well under a millisecond on a heap of tens of MB."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def start_watchdog(health: HealthState, *, stage: str, block_s: float, exit_code: int) -> threading.Thread:
    """A daemon thread that ends the process if the event loop stops ticking for ``block_s``."""

    def watch() -> None:
        while True:
            time.sleep(min(5.0, block_s / 4))
            age = health.loop_age_s()
            if age > block_s:
                line = {
                    "ts": round(time.time(), 3),
                    "level": "critical",
                    "stage": stage,
                    "logger": __name__,
                    "msg": f"event loop blocked for {age:.0f} s; exiting to be restarted",
                }
                sys.stderr.write(json.dumps(line) + "\n")
                sys.stderr.flush()
                os._exit(exit_code)

    thread = threading.Thread(target=watch, name="loop-watchdog", daemon=True)
    thread.start()
    return thread


def run_worker(factory: Callable[[Settings], object]) -> None:
    """``python -m workers.<stage>``: build the worker from parsed settings and run it."""
    from workers.lifecycle.worker import EXIT_UNHEALTHY, Worker

    die_with_parent()
    settings = Settings.load()

    async def main() -> int:
        worker = factory(settings)
        assert isinstance(worker, Worker)
        configure_logging(worker.stage.value, settings.metrics.log_level)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.stop()))
        start_watchdog(
            worker.health,
            stage=worker.stage.value,
            block_s=settings.worker.loop_block_exit_s,
            exit_code=EXIT_UNHEALTHY,
        )
        await worker.run()
        return worker.exit_code

    code = asyncio.run(main())
    if code:
        sys.exit(code)
