"""Session fixtures: real S3 (SeaweedFS), PostgreSQL and Kafka (Tansu) on free 127.0.0.1 ports.

Each service starts lazily, the first time a test asks for it, once per session, through
the embedded stack's own launchers (workers/stack), and is stopped by PID at the end:

* ``s3_service`` -> S3Settings (bucket ``streamcrawl-test`` created)
* ``postgres_service`` -> PostgresSettings (database ``streamcrawl_test`` created, empty)
* ``kafka_service`` -> KafkaSettings for a memory-backed Tansu broker with every registry
  topic provisioned and fast group joins (session 2 s, heartbeat 0.3 s)
* ``settings`` -> Settings combining the three (data dir in the session's tmp dir, private
  networks allowed for the ingestor, rich renderer off)

State lives in a temporary directory other users can traverse (PostgreSQL runs as the
`postgres` user when the tests run as root), removed after the session.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers.services import make_stack_settings, start_kafka, start_postgres, start_s3
from workers.settings import IngestorSettings, KafkaSettings, PostgresSettings, S3Settings, Settings


@pytest.fixture(scope="session")
def services_dir() -> Iterator[Path]:
    """Root of every test service's state for this session."""
    path = Path(tempfile.mkdtemp(prefix="streamcrawl-test-"))
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def s3_service(services_dir: Path) -> Iterator[S3Settings]:
    component, s3 = start_s3(services_dir / "s3")
    try:
        yield s3
    finally:
        component.stop()


@pytest.fixture(scope="session")
def postgres_service(services_dir: Path) -> Iterator[PostgresSettings]:
    component, pg = start_postgres(services_dir / "postgres")
    try:
        yield pg
    finally:
        component.stop()


@pytest.fixture(scope="session")
def kafka_service(services_dir: Path) -> Iterator[KafkaSettings]:
    component, kafka, _report = start_kafka(services_dir / "kafka")
    try:
        yield kafka
    finally:
        component.stop()


@pytest.fixture(scope="session")
def settings(
    services_dir: Path,
    s3_service: S3Settings,
    postgres_service: PostgresSettings,
    kafka_service: KafkaSettings,
) -> Settings:
    return Settings(
        stack=make_stack_settings(services_dir / "data"),
        kafka=kafka_service,
        postgres=postgres_service,
        s3=s3_service,
        ingestor=IngestorSettings(allow_private_networks=True),
    )


_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def pytest_configure(config: pytest.Config) -> None:
    """Stop signals as in an interactive shell, whatever started pytest.

    A background job (``make test &``, some CI runners) starts with SIGINT ignored; Dagster's
    interrupt set-up then copies SIGINT's disposition onto SIGTERM, and every subprocess a later
    test starts inherits an ignored SIGTERM: servers that never stop, children that outlive
    their parent, a pytest that hangs at exit joining them.
    """
    del config
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _inherited_signal_state() -> tuple[set[signal.Signals], set[signal.Signals]]:
    """The stop signals ignored and blocked here: what every subprocess inherits across exec."""
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
    ignored = {s for s in _STOP_SIGNALS if signal.getsignal(s) == signal.SIG_IGN}
    return ignored, {s for s in _STOP_SIGNALS if s in blocked}


@pytest.fixture(autouse=True)
def _stop_signals_left_as_found() -> Iterator[None]:
    """A test that leaves SIGTERM/SIGINT ignored or blocked in this process is put right (and
    named in a warning): every later subprocess would inherit it and not stop when asked."""
    before = _inherited_signal_state()
    yield
    after = _inherited_signal_state()
    if after != before:
        for sig in after[0] - before[0]:
            signal.signal(sig, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, after[1] - before[1])
        warnings.warn(f"the test left stop signals ignored/blocked: {before} -> {after}", stacklevel=1)
