"""The stack's process manager on real processes: trees die, recycled PIDs are never signalled."""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.ports import free_port
from tests.helpers.services import make_stack_settings
from workers.errors import PortInUseError, StackError
from workers.settings import KafkaSettings, PostgresSettings, S3Settings
from workers.stack.broker import TansuBroker
from workers.stack.paths import StackPaths
from workers.stack.postgres import EmbeddedPostgres
from workers.stack.process import ManagedProcess, PidRecord, ProcessSpec, wait_until
from workers.stack.procfs import descendants, pid_alive, proc_info

pytestmark = pytest.mark.integration

# A parent that ignores SIGTERM and leaves a child and a grandchild behind: the worst case.
_STUBBORN = (
    "import os, signal, subprocess, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "subprocess.Popen(['sh', '-c', 'sleep 300 & sleep 300'])\n"
    "print('ready', flush=True)\n"
    "time.sleep(300)\n"
)


def _spec(tmp_path: Path, argv: list[str], **kwargs: object) -> ProcessSpec:
    return ProcessSpec(
        name="probe",
        argv=argv,
        log_path=tmp_path / "probe.log",
        pid_path=tmp_path / "probe.pid",
        **kwargs,  # type: ignore[arg-type]
    )


def test_stop_kills_a_stubborn_tree_by_pid(tmp_path: Path) -> None:
    proc = ManagedProcess(_spec(tmp_path, [sys.executable, "-c", _STUBBORN], stop_timeout_s=1.0))
    rec = proc.start()
    proc.wait_ready(lambda: "ready" in (tmp_path / "probe.log").read_text(), timeout_s=20, what="stdout")
    deadline = time.monotonic() + 10
    while len(descendants(rec.pid)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    tree = [rec.pid, *(p.pid for p in descendants(rec.pid))]
    assert len(tree) >= 4
    started = time.monotonic()
    assert proc.stop() is True
    assert time.monotonic() - started < 10
    assert [pid for pid in tree if pid_alive(pid)] == []
    assert not proc.spec.pid_path.exists()
    assert proc.stop() is False  # idempotent


def test_children_inherit_default_signal_handling(tmp_path: Path) -> None:
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        code = (
            "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)"
        )
        proc = ManagedProcess(_spec(tmp_path, [sys.executable, "-c", code]))
        proc.start()
        proc.wait_ready(lambda: "True" in (tmp_path / "probe.log").read_text(), timeout_s=20, what="stdout")
    finally:
        signal.signal(signal.SIGINT, previous)


def test_recycled_pid_is_not_ours(tmp_path: Path) -> None:
    me = proc_info(os.getpid())
    assert me is not None
    # Our own PID with another start time: what a recycled PID looks like.
    (tmp_path / "probe.pid").write_text(PidRecord(pid=os.getpid(), start_time=me.start_time + 1).dumps())
    proc = ManagedProcess(_spec(tmp_path, ["true"]))
    assert proc.running() is None
    assert proc.stop() is False  # and nothing was signalled: we are still here


def test_startup_failure_names_the_log(tmp_path: Path) -> None:
    code = "import sys; print('boom: bad config', flush=True); sys.exit(3)"
    proc = ManagedProcess(_spec(tmp_path, [sys.executable, "-c", code]))
    proc.start()
    with pytest.raises(StackError, match=r"exited during startup \(exit code 3\): 'boom: bad config'"):
        proc.wait_ready(lambda: False, timeout_s=20, what="never")


def test_taken_port_names_the_setting(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        paths = StackPaths.at(tmp_path)
        pg = EmbeddedPostgres(
            stack=make_stack_settings(tmp_path),
            postgres=PostgresSettings(port=port, password="x"),
            paths=paths,
        )
        with pytest.raises(PortInUseError, match="STREAMCRAWL_PG_PORT") as info:
            pg.ensure_running()
        assert info.value.port == port
        broker = TansuBroker(
            stack=make_stack_settings(tmp_path),
            kafka=KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}"),
            s3=S3Settings(),
            paths=paths,
        )
        with pytest.raises(PortInUseError, match="STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS"):
            broker.ensure_running()
    assert not (tmp_path / "run" / "postgres.pid").exists()


def test_running_component_is_left_alone(tmp_path: Path) -> None:
    paths = StackPaths.at(tmp_path)
    kafka = KafkaSettings(bootstrap_servers=f"127.0.0.1:{free_port()}")
    broker = TansuBroker(stack=make_stack_settings(tmp_path), kafka=kafka, s3=S3Settings(), paths=paths)
    try:
        assert broker.ensure_running().value == "started"
        pid = broker.pid()
        again = TansuBroker(stack=make_stack_settings(tmp_path), kafka=kafka, s3=S3Settings(), paths=paths)
        assert again.ensure_running().value == "running"
        assert again.pid() == pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert wait_until(lambda: not pid_alive(pid), timeout_s=5)
        assert again.ensure_running().value == "started"  # a dead one is restarted
        assert again.pid() not in (None, pid)
    finally:
        broker.stop()
        TansuBroker.stop_recorded(paths.run)
