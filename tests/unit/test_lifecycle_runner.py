"""What makes a worker process safe to supervise: it dies with its parent, orphans are found."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from workers.lifecycle.runner import die_with_parent
from workers.stack.process import wait_until
from workers.stack.procfs import pid_alive
from workers.stack.supervisor import STACK_OWNER_ENV, orphans, stop_orphans
from workers.stack.worker_health import describe

_CHILD = (
    "import sys, time\n"
    "from workers.lifecycle.runner import die_with_parent\n"
    "assert die_with_parent()\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)\n"
)
_PARENT = (
    "import subprocess, sys, time\n"
    f"child = subprocess.Popen([sys.executable, '-c', {_CHILD!r}])\n"
    "print(child.pid, flush=True)\n"
    "time.sleep(60)\n"
)


def test_a_worker_gets_sigterm_when_its_supervisor_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert parent.stdout.readline().strip() == "ready"
        parent.kill()  # like `kill -9` of supervisord
        parent.wait(timeout=10)
        assert wait_until(lambda: not pid_alive(child), timeout_s=10), "the child outlived its parent"
    finally:
        if parent.poll() is None:
            parent.kill()
    assert die_with_parent() in (True, False)  # callable in-process too (pytest's parent is alive)


def test_marked_leftovers_of_a_data_dir_are_found_and_stopped(tmp_path: Path) -> None:
    root = tmp_path / "data"
    other = tmp_path / "other"
    mine = subprocess.Popen(["sleep", "60"], env={**os.environ, STACK_OWNER_ENV: str(root)})
    theirs = subprocess.Popen(["sleep", "60"], env={**os.environ, STACK_OWNER_ENV: str(other)})
    try:
        assert wait_until(lambda: any(p.pid == mine.pid for p in orphans(root)), timeout_s=5)
        assert all(p.pid != theirs.pid for p in orphans(root))  # another stack's process is not ours
        assert not orphans(root, supervisor_pid=os.getpid())  # a child of the live supervisor is no orphan
        started = time.monotonic()
        assert stop_orphans(root, timeout_s=5) == 1
        # (the stack reaps what it stops, so the status Popen sees is not the signal)
        assert not pid_alive(mine.pid) and time.monotonic() - started < 5
        assert pid_alive(theirs.pid)
    finally:
        for proc in (mine, theirs):
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def test_status_phrases_for_a_workers_own_answer() -> None:
    assert describe(None) == "no health answer"
    assert describe({"healthy": True, "ready": True, "partitions": 4, "lag": 12}) == "4 partitions, lag 12"
    assert describe({"healthy": True, "ready": False, "reason": "no partitions for 312 s"}) == (
        "NOT READY: no partitions for 312 s"
    )
    assert describe({"healthy": False, "ready": True, "reason": "no progress for 301 s"}).startswith(
        "UNHEALTHY"
    )
