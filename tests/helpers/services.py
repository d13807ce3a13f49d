"""Real services for tests, started with the embedded stack's own launchers.

Each ``start_*`` picks free 127.0.0.1 ports, starts the server under ``base`` and returns
the running component (stop it with ``component.stop()``) and the client settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import signal
import threading
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

from tests.helpers.ports import free_port, free_port_block, free_port_with_grpc
from workers.provision import ProvisionReport, provision
from workers.settings import KafkaSettings, PostgresSettings, S3Settings, StackSettings
from workers.stack.broker import TansuBroker
from workers.stack.paths import StackPaths
from workers.stack.ports import LOCALHOST
from workers.stack.postgres import EmbeddedPostgres
from workers.stack.process import ProcessSpec
from workers.stack.seaweed import SeaweedFS

__all__ = [
    "make_stack_settings",
    "own_broker",
    "run_coro",
    "stack_env",
    "start_kafka",
    "start_postgres",
    "start_s3",
]

T = TypeVar("T")


def run_coro(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion on a private loop in a thread (safe from sync fixtures)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name="test-helper-loop")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def make_stack_settings(data_dir: Path, **overrides: Any) -> StackSettings:
    """StackSettings on free ports under ``data_dir`` (rich renderer off, broker in memory)."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "broker_storage": "memory",
        "seaweed_master_port": free_port_with_grpc(),
        "seaweed_volume_port": free_port_with_grpc(),
        "seaweed_filer_port": free_port_with_grpc(),
        "dagster_port": free_port(),
        "supervisor_port": free_port(),
        "start_rich_renderer": False,
    }
    values.update(overrides)
    return StackSettings(**values)


def stack_env(data_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of a `streamcrawl` CLI run on free ports under ``data_dir`` (no other STREAMCRAWL_*)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("STREAMCRAWL_")}
    env.update(
        STREAMCRAWL_DATA_DIR=str(data_dir),
        STREAMCRAWL_SEAWEED_MASTER_PORT=str(free_port_with_grpc()),
        STREAMCRAWL_SEAWEED_VOLUME_PORT=str(free_port_with_grpc()),
        STREAMCRAWL_SEAWEED_FILER_PORT=str(free_port_with_grpc()),
        STREAMCRAWL_S3_ENDPOINT=f"127.0.0.1:{free_port_with_grpc()}",
        STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{free_port()}",
        STREAMCRAWL_PG_PORT=str(free_port()),
        STREAMCRAWL_PG_PASSWORD="stack-test-password",
        STREAMCRAWL_S3_SECRET_KEY="stack-test-secret",
        STREAMCRAWL_DAGSTER_PORT=str(free_port()),
        STREAMCRAWL_SUPERVISOR_PORT=str(free_port()),
        STREAMCRAWL_PROMETHEUS_PORT=str(free_port()),
        STREAMCRAWL_API_PORT=str(free_port()),
        STREAMCRAWL_START_RICH_RENDERER="false",
        # Each daemon binds base + its offset: a block below the ephemeral range.
        STREAMCRAWL_METRICS_BASE_PORT=str(free_port_block()),
    )
    env.update(extra)
    return env


def start_s3(base: Path) -> tuple[SeaweedFS, S3Settings]:
    s3 = S3Settings(
        endpoint=f"127.0.0.1:{free_port_with_grpc()}",
        access_key="test-" + secrets.token_hex(4),
        secret_key=secrets.token_hex(16),
        bucket="streamcrawl-test",
        broker_bucket="streamcrawl-test-broker",
        secure=False,
        region="us-east-1",
    )
    stack = make_stack_settings(base)
    component = SeaweedFS(stack=stack, s3=s3, paths=StackPaths.at(base))
    component.ensure_running()
    return component, s3


class _LanPostgres(EmbeddedPostgres):
    """The embedded PostgreSQL, also listening on a lab host's address (``tests.helpers.netns``).

    Worker hosts then connect to it directly, so a host that vanishes is a vanished TCP peer
    of PostgreSQL itself: through a userspace forwarder, the forwarder would answer for it
    (ACKs, keepalives) and the server-side timeouts would never be exercised."""

    def __init__(self, *args: Any, lan: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lan = lan

    def prepare(self) -> None:
        super().prepare()
        hba = self.data_dir / "pg_hba.conf"
        subnet = self.lan.rsplit(".", 1)[0] + ".0/24"
        line = f"host all all {subnet} scram-sha-256\n"
        text = hba.read_text()
        if line not in text:
            hba.write_text(text + line)  # rewrites in place: the file keeps its owner

    def spec(self) -> ProcessSpec:
        spec = super().spec()
        own = f"listen_addresses={LOCALHOST}"
        assert own in spec.argv, spec.argv
        argv = [f"{own},{self.lan}" if a == own else a for a in spec.argv]
        return dataclasses.replace(spec, argv=argv)


def start_postgres(base: Path, *, lan: str | None = None) -> tuple[EmbeddedPostgres, PostgresSettings]:
    """PostgreSQL on a free port of 127.0.0.1 (and of ``lan``, a lab host's address, when given:
    run this on that host)."""
    pg = PostgresSettings(
        host="127.0.0.1",
        port=free_port(),
        user="streamcrawl",
        password=secrets.token_hex(12),
        database="streamcrawl_test",
        dagster_database="dagster_test",
    )
    kwargs: dict[str, Any] = {
        "stack": make_stack_settings(base),
        "postgres": pg,
        "paths": StackPaths.at(base),
        "durable": False,
    }
    component = EmbeddedPostgres(**kwargs) if lan is None else _LanPostgres(lan=lan, **kwargs)
    component.ensure_running()
    return component, pg


def production_group_timing(kafka: KafkaSettings) -> KafkaSettings:
    """``kafka`` with the default consumer-group heartbeat and session timeout instead of the
    tests' fast ones: for benchmarks, which must cost what a real stack costs (each
    heartbeat is a group-state write in Tansu's object store: 300 ms heartbeats were ~14
    PUTs/s more than the defaults on an idle stack)."""
    fields = KafkaSettings.model_fields
    return kafka.model_copy(
        update={
            "session_timeout_ms": fields["session_timeout_ms"].default,
            "heartbeat_interval_ms": fields["heartbeat_interval_ms"].default,
        }
    )


def start_kafka(
    base: Path, *, s3: S3Settings | None = None
) -> tuple[TansuBroker, KafkaSettings, ProvisionReport]:
    """A Tansu broker (memory storage, or S3 when ``s3`` is given) with every registry topic."""
    kafka = KafkaSettings(
        bootstrap_servers=f"127.0.0.1:{free_port()}",
        security_protocol="PLAINTEXT",
        session_timeout_ms=2000,
        heartbeat_interval_ms=300,
    )
    stack = make_stack_settings(base, broker_storage="s3" if s3 is not None else "memory")
    component = TansuBroker(
        stack=stack, kafka=kafka, s3=s3 if s3 is not None else S3Settings(), paths=StackPaths.at(base)
    )
    component.ensure_running()
    try:
        report = run_coro(provision(kafka))
    except BaseException:
        component.stop()
        raise
    return component, kafka, report


@contextlib.contextmanager
def own_broker(base: Path) -> Iterator[tuple[TansuBroker, KafkaSettings]]:
    """A memory broker of one test's own (its groups and crash markers start empty), stopped
    after the test — resumed first if the test froze it (SIGSTOP) and failed."""
    component, kafka, _report = start_kafka(base)
    try:
        yield component, kafka
    finally:
        pid = component.pid()
        if pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        component.stop()
