"""PostgreSQL as a Dagster resource, built on the workers' PostgresSettings."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from dagster import ConfigurableResource
from pydantic import Field

from crawl_assets.resources._settings import settings_with
from crawl_assets.schema import ensure_schema
from workers.settings import PostgresSettings

__all__ = ["PostgresResource"]


class PostgresResource(ConfigurableResource["PostgresResource"]):
    """The database holding pages, Tranco snapshots, crawl batches and parked dead letters.

    Unset fields fall back to the workers' settings (``STREAMCRAWL_PG_*``, read at run
    time); ``definitions.py`` wires the password with ``EnvVar("STREAMCRAWL_PG_PASSWORD")``.
    """

    host: str | None = Field(default=None, description="PostgreSQL host.")
    port: int | None = Field(default=None, description="PostgreSQL port.")
    user: str | None = Field(default=None, description="PostgreSQL user.")
    password: str | None = Field(default=None, description="PostgreSQL password (wire it with EnvVar).")
    database: str | None = Field(default=None, description="Database holding the `pages` table.")

    @classmethod
    def from_settings(cls, settings: PostgresSettings) -> PostgresResource:
        return cls(
            host=settings.host,
            port=settings.port,
            user=settings.user,
            password=settings.password,
            database=settings.database,
        )

    def settings(self) -> PostgresSettings:
        return settings_with(
            PostgresSettings,
            {
                "host": self.host,
                "port": self.port,
                "user": self.user,
                "password": self.password,
                "database": self.database,
            },
        )

    @asynccontextmanager
    async def connect(self) -> AsyncIterator[asyncpg.Connection]:
        """A connection with the control plane's tables present (created if missing)."""
        conn = await asyncpg.connect(self.settings().dsn(), timeout=10)
        try:
            await ensure_schema(conn)
            yield conn
        finally:
            await conn.close()
