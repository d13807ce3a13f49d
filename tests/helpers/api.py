"""The read API in tests: in-process (ASGI, real services) or as its own process.

* :func:`api_client` runs the app's lifespan (PageStore: its pool, S3 client, migrations) and
  yields an ``httpx.AsyncClient`` talking ASGI to it;
* :class:`ApiProcess` starts ``python -m workers.api`` exactly as supervisord does, on a
  free port, and stops it by PID;
* :func:`fresh_database` gives a test module its own database, so search results only hold
  the pages it stored; :func:`store_pages` writes pages through ``PageStore`` and then the
  plain text and detected language the way the storage writer will (``pages.text``,
  ``pages.language``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import asyncpg
import httpx

from tests.helpers.ports import free_port
from workers.api import create_app
from workers.api.keys import create_key
from workers.messages import ProcessedPage
from workers.settings import ApiSettings, PostgresSettings, Settings
from workers.stack.environment import settings_env
from workers.storage import PageStore
from workers.storage.migrate import apply_migrations

__all__ = ["ApiProcess", "api_client", "auth", "fresh_database", "make_key", "store_pages"]

ROOT = Path(__file__).resolve().parents[2]


@contextlib.asynccontextmanager
async def fresh_database(pg: PostgresSettings, prefix: str = "api") -> AsyncIterator[PostgresSettings]:
    """A new empty database (migrations applied), dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg.dsn())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        settings = pg.model_copy(update={"database": name})
        conn = await asyncpg.connect(settings.dsn())
        try:
            await apply_migrations(conn)
        finally:
            await conn.close()
        try:
            yield settings
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@contextlib.asynccontextmanager
async def api_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api.test") as client,
    ):
        yield client


async def make_key(pg: PostgresSettings, scope: str = "read", *, rate_per_s: int | None = None) -> str:
    conn = await asyncpg.connect(pg.dsn())
    try:
        key, _row = await create_key(
            conn, name=f"test-{scope}-{uuid.uuid4().hex[:8]}", scope=scope, rate_per_s=rate_per_s
        )
    finally:
        await conn.close()
    return key


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


async def store_pages(store: PageStore, pages: Sequence[ProcessedPage]) -> None:
    """Save ``pages``, then their text and detected language, and build their search vectors now."""
    await store.save_batch(pages)
    await store.pool.execute(
        "UPDATE pages p SET text = u.text, language = u.language"
        " FROM unnest($1::text[], $2::text[], $3::text[]) AS u(url_hash, text, language)"
        " WHERE p.url_hash = u.url_hash",
        [p.url_hash for p in pages],
        [p.text or None for p in pages],
        [p.language for p in pages],
    )
    await store.index_search()  # the writer's background indexer does this shortly after a write


class ApiProcess:
    """``python -m workers.api`` with ``settings`` in its environment, on a free port."""

    def __init__(
        self, settings: Settings, *, log_path: Path, extra_env: Mapping[str, str] | None = None
    ) -> None:
        self.port = free_port()
        self.settings = settings.model_copy(
            update={"api": settings.api.model_copy(update={"port": self.port})}
        )
        assert isinstance(self.settings.api, ApiSettings)
        self.env = {**os.environ, **settings_env(self.settings), "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, *, timeout_s: float = 60.0) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "workers.api"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"API exited with {self.proc.returncode}:\n{self.logs()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"API not ready within {timeout_s} s:\n{self.logs()}")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return None if proc is None else proc.returncode
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            return proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            return None

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
