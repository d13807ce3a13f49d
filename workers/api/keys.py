"""API keys: created by `streamcrawl api-key create`, hashed at rest, checked on every request.

A key is ``sck_<key_id>_<secret>``: ``key_id`` (12 hex characters) is public and names the
key in logs and listings; ``secret`` is 256 random bits. PostgreSQL holds only the SHA-256
of the whole key (table ``api_keys``, migration 0021); the key itself is printed once, when
it is created, and never again. A key of 256 random bits needs no slow password hash: there
is nothing to guess.

Scopes: ``read`` (every GET) and ``write`` (also ``POST /crawls``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import asyncpg

from workers.errors import ConfigError

__all__ = [
    "KEY_PATTERN",
    "SCOPES",
    "ApiKey",
    "KeyScope",
    "create_key",
    "find_key",
    "key_id_of",
    "list_keys",
    "revoke_key",
    "scope_allows",
    "touch_keys",
]

KeyScope = Literal["read", "write"]
SCOPES: tuple[KeyScope, ...] = ("read", "write")
KEY_PATTERN = re.compile(r"^sck_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 ._@-]{0,99}$")


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scope: KeyScope
    rate_per_s: int | None
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None
    key_sha256: str = ""

    def as_dict(self) -> dict[str, object]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scope": self.scope,
            "rate_per_s": self.rate_per_s,
            "created_at": self.created_at.isoformat(),
            "last_used_at": self.last_used_at.isoformat() if self.last_used_at else None,
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


def scope_allows(granted: str, needed: KeyScope) -> bool:
    """``write`` keys may read; ``read`` keys may only read."""
    return granted == "write" or granted == needed


def _sha256(key: str) -> str:
    return hashlib.sha256(key.encode("ascii")).hexdigest()


def key_id_of(presented: str) -> str | None:
    """The public id of a well-formed key, None for anything else."""
    match = KEY_PATTERN.match(presented)
    return match.group(1) if match else None


def _from_record(r: asyncpg.Record) -> ApiKey:
    return ApiKey(
        key_id=r["key_id"],
        name=r["name"],
        scope=r["scope"],
        rate_per_s=r["rate_per_s"],
        created_at=r["created_at"],
        last_used_at=r["last_used_at"],
        revoked_at=r["revoked_at"],
        key_sha256=r["key_sha256"],
    )


_COLUMNS = "key_id, name, scope, key_sha256, rate_per_s, created_at, last_used_at, revoked_at"


async def create_key(
    conn: asyncpg.Connection | asyncpg.Pool, *, name: str, scope: str, rate_per_s: int | None = None
) -> tuple[str, ApiKey]:
    """A new key: returns ``(the key, its row)``. The key is not stored and cannot be shown again."""
    if not _NAME.match(name):
        raise ConfigError(
            f"key name {name!r} must be 1-100 characters: letters, digits, space, . _ @ - (starting with a letter or digit)"
        )
    if scope not in SCOPES:
        raise ConfigError(f"scope must be read or write, not {scope!r}")
    if rate_per_s is not None and rate_per_s < 1:
        raise ConfigError(f"--rate must be at least 1 request per second, not {rate_per_s}")
    key_id = secrets.token_hex(6)
    key = f"sck_{key_id}_{secrets.token_urlsafe(32)}"
    try:
        row = await conn.fetchrow(
            f"INSERT INTO api_keys (key_id, name, scope, key_sha256, rate_per_s) VALUES ($1, $2, $3, $4, $5)"
            f" RETURNING {_COLUMNS}",
            key_id,
            name,
            scope,
            _sha256(key),
            rate_per_s,
        )
    except asyncpg.UniqueViolationError:
        raise ConfigError(
            f"an active key named {name!r} exists: choose another --name, or revoke it first"
        ) from None
    assert row is not None
    return key, _from_record(row)


async def find_key(
    conn: asyncpg.Connection | asyncpg.Pool, presented: str, *, timeout_s: float | None = None
) -> ApiKey | None:
    """The active key matching ``presented`` exactly, None otherwise (compared in constant time)."""
    key_id = key_id_of(presented)
    if key_id is None:
        return None
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL", key_id, timeout=timeout_s
    )
    if row is None or not hmac.compare_digest(row["key_sha256"], _sha256(presented)):
        return None
    return _from_record(row)


async def list_keys(
    conn: asyncpg.Connection | asyncpg.Pool, *, include_revoked: bool = False
) -> list[ApiKey]:
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM api_keys"
        + ("" if include_revoked else " WHERE revoked_at IS NULL")
        + " ORDER BY created_at, key_id"
    )
    return [_from_record(r) for r in rows]


async def revoke_key(conn: asyncpg.Connection | asyncpg.Pool, ident: str) -> ApiKey:
    """Revoke the active key with this key_id or name; ConfigError when there is none."""
    row = await conn.fetchrow(
        f"UPDATE api_keys SET revoked_at = now() WHERE revoked_at IS NULL AND (key_id = $1 OR name = $1)"
        f" RETURNING {_COLUMNS}",
        ident,
    )
    if row is None:
        raise ConfigError(f"no active API key with id or name {ident!r} (see `streamcrawl api-key list`)")
    return _from_record(row)


async def touch_keys(conn: asyncpg.Connection | asyncpg.Pool, key_ids: Sequence[str]) -> None:
    """Record that these keys were used (batched: the API calls this at most once a minute)."""
    if key_ids:
        await conn.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE key_id = ANY($1::text[])", list(key_ids)
        )
