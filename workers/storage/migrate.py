"""Schema migrations: numbered ``migrations/NNNN_name.sql`` (or ``.py``) files applied in order, once.

A ``.py`` migration is a data migration: a module with ``async def migrate(conn)`` run inside
the same transaction (used when rows must be recomputed with Python code, e.g. URL hashes).

``schema_migrations`` records each applied version with its file's SHA-256. The whole run
happens in one transaction that first takes a transaction-level advisory lock, so two
storage writers starting together never race: the second waits, then finds nothing to do.
A migration file edited after it was applied is refused (ConfigError) rather than silently
ignored: add a new numbered file instead.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

import asyncpg

from workers.errors import ConfigError

__all__ = ["MIGRATION_LOCK_KEY", "Migration", "apply_migrations", "load_migrations"]

# An arbitrary constant identifying "StreamCrawl schema migration" among advisory locks.
MIGRATION_LOCK_KEY = 0x5C_57_0A_6E
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.(sql|py)$")


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    sql: str
    """The SQL text, or the Python source of a data migration."""
    kind: str = "sql"

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    async def run(self, conn: asyncpg.Connection) -> None:
        if self.kind == "sql":
            await conn.execute(self.sql)
            return
        # File names start with digits, so the module is run from its source, not imported.
        namespace: dict[str, object] = {"__name__": f"streamcrawl_migration_{self.version:04d}"}
        exec(compile(self.sql, f"{self.version:04d}_{self.name}.py", "exec"), namespace)
        migrate = namespace.get("migrate")
        if not callable(migrate):
            raise ConfigError(f"migration {self.version:04d}_{self.name}.py defines no migrate(conn)")
        runner: Callable[[asyncpg.Connection], Awaitable[None]] = migrate
        await runner(conn)


def load_migrations() -> list[Migration]:
    """Every migration shipped with the package, sorted by version."""
    found: dict[int, Migration] = {}
    for entry in (resources.files(__package__ or "workers.storage") / "migrations").iterdir():
        match = _NAME.match(entry.name)
        if match is None:
            continue
        version = int(match.group(1))
        if version in found:
            raise ConfigError(f"two migrations share version {version:04d}")
        found[version] = Migration(
            version, match.group(2), entry.read_text(encoding="utf-8"), kind=match.group(3)
        )
    return [found[v] for v in sorted(found)]


async def apply_migrations(
    conn: asyncpg.Connection, *, migrations: list[Migration] | None = None
) -> list[int]:
    """Apply the pending migrations; return the versions applied (empty when up to date)."""
    todo = load_migrations() if migrations is None else migrations
    applied: list[int] = []
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", MIGRATION_LOCK_KEY)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {
            r["version"]: r["checksum"]
            for r in await conn.fetch("SELECT version, checksum FROM schema_migrations")
        }
        for m in todo:
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise ConfigError(
                        f"migration {m.version:04d}_{m.name}.sql changed after it was applied; "
                        "add a new numbered migration instead of editing an applied one"
                    )
                continue
            await m.run(conn)
            await conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)",
                m.version,
                m.name,
                m.checksum,
            )
            applied.append(m.version)
    return applied
