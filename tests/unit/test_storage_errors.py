"""Storage failures map onto the error tree: connection trouble retries, bad data dead-letters."""

from __future__ import annotations

import socket

import asyncpg
import pytest
from minio.error import S3Error

from workers.errors import DependencyUnavailable, RecordRejected
from workers.settings import S3Settings
from workers.storage.objects import Blob, MemoryBlobStore, S3BlobStore, _s3_error
from workers.storage.pages import pg_errors


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.exceptions.TooManyConnectionsError("too many clients"),
        asyncpg.exceptions.DeadlockDetectedError("deadlock"),
        asyncpg.InterfaceError("pool is closing"),
        # Not an InterfaceError: a connection whose protocol was left mid-operation as the
        # server went away (a postgres-down drill dead-lettered two pages with it).
        asyncpg.InternalClientError("cannot switch to state 15; another operation (2) is in progress"),
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
    ],
)
def test_connection_problems_are_retryable(exc: Exception) -> None:
    with pytest.raises(DependencyUnavailable), pg_errors("test"):
        raise exc


@pytest.mark.parametrize(
    "exc",
    [
        asyncpg.exceptions.CharacterNotInRepertoireError("invalid byte sequence"),
        asyncpg.exceptions.NumericValueOutOfRangeError("integer out of range"),
        asyncpg.exceptions.NotNullViolationError("null value"),
    ],
)
def test_values_postgresql_refuses_reject_the_record(exc: Exception) -> None:
    with pytest.raises(RecordRejected), pg_errors("test"):
        raise exc


def test_a_bug_is_not_disguised_as_a_dependency_failure() -> None:
    with pytest.raises(asyncpg.exceptions.UndefinedTableError), pg_errors("test"):
        raise asyncpg.exceptions.UndefinedTableError('relation "pages" does not exist')


def _s3(code: str) -> S3Error:
    return S3Error(None, code, "message", "resource", "request", "host")  # type: ignore[arg-type]


def test_s3_errors_map_by_code() -> None:
    assert isinstance(_s3_error(_s3("EntityTooLarge"), "PUT k"), RecordRejected)
    assert isinstance(_s3_error(_s3("InternalError"), "PUT k"), DependencyUnavailable)
    assert isinstance(_s3_error(_s3("AccessDenied"), "PUT k"), DependencyUnavailable)
    assert isinstance(_s3_error(OSError("reset"), "PUT k"), DependencyUnavailable)


async def test_an_unreachable_object_store_is_retryable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again before use: nothing listens there
    store = S3BlobStore(S3Settings(endpoint=f"127.0.0.1:{port}"), parallelism=2, timeout_s=1.0)
    try:
        with pytest.raises(DependencyUnavailable):
            await store.put_many([Blob("pages/aa/x/content.md", b"x", "text/markdown")])
        with pytest.raises(DependencyUnavailable):
            await store.get("pages/aa/x/content.md")
    finally:
        await store.close()
        await store.close()  # idempotent


async def test_memory_blob_store_serves_byte_ranges() -> None:
    store = MemoryBlobStore()
    await store.put_many([Blob("k", b"0123456789", "application/octet-stream")])
    assert await store.get("k", offset=2, length=3) == b"234"
    assert await store.get("k") == b"0123456789"
    assert await store.get("missing") is None
    assert store.puts == 1
