"""Page content in S3: the key layout and a bounded-parallel object writer.

New content goes into append-only WARC objects (:func:`warc_object_key`: a fresh, never
reused key per object), so no write ever replaces bytes a row points at. The first build's
keys (:func:`page_keys` per URL, ``segments/`` per batch) are still read.

The ``minio`` client is synchronous; :class:`S3BlobStore` runs its calls in a thread pool of
``StorageSettings.s3_parallelism`` threads sharing one urllib3 pool of the same size. The
object store's request rate, not bandwidth, is the limit (~1 ms of SeaweedFS CPU per PUT
here), so the writer also skips objects whose bytes are already stored (see store.py).
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import urllib3
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from workers.errors import DependencyUnavailable, RecordRejected, StreamCrawlError
from workers.settings import S3Settings

__all__ = [
    "CONTENT_PREFIXES",
    "HTML_TYPE",
    "MARKDOWN_TYPE",
    "WARC_TYPE",
    "Blob",
    "BlobStore",
    "MemoryBlobStore",
    "ObjectInfo",
    "PageKeys",
    "S3BlobStore",
    "digest",
    "page_keys",
    "segment_key",
    "warc_object_key",
]

HTML_TYPE = "application/zstd"
MARKDOWN_TYPE = "text/markdown; charset=utf-8"
WARC_TYPE = "application/warc"
CONTENT_PREFIXES = ("warc/", "pages/", "segments/")
"""Where page content lives (garbage collection and fsck look only here; exports/ is not content)."""
_HEX = frozenset("0123456789abcdef")
_RECORD_CODES = frozenset({"EntityTooLarge", "KeyTooLongError", "InvalidObjectName", "InvalidArgument"})


@dataclass(frozen=True, slots=True)
class PageKeys:
    html: str
    markdown: str
    rendered: str


def page_keys(url_hash: str) -> PageKeys:
    """``pages/<first 2 hex of url_hash>/<url_hash>/{raw.html.zst,content.md,rendered.html.zst}``.

    Raises RecordRejected unless url_hash is 16-128 lower-case hex characters.
    """
    if not 16 <= len(url_hash) <= 128 or not _HEX.issuperset(url_hash):
        raise RecordRejected(f"url_hash must be 16-128 lower-case hex characters, got {url_hash[:140]!r}")
    prefix = f"pages/{url_hash[:2]}/{url_hash}/"
    return PageKeys(
        html=prefix + "raw.html.zst",
        markdown=prefix + "content.md",
        rendered=prefix + "rendered.html.zst",
    )


def segment_key(body_digest: str) -> str:
    """``segments/<hh>/<digest>.seg``: the first build's segment layout (read only)."""
    return f"segments/{body_digest[:2]}/{body_digest}.seg"


def warc_object_key(now: float) -> str:
    """``warc/YYYY/MM/DD/YYYYMMDDHHMMSS-<24 hex>.warc.gz``: a new key for every object written.

    Never reused, so a PUT can only create an object, never replace one a row points at (a
    redelivery writes a second object; the first becomes garbage the collector removes).
    """
    t = datetime.fromtimestamp(now, UTC)
    return f"warc/{t:%Y/%m/%d}/{t:%Y%m%d%H%M%S}-{uuid.uuid4().hex[:24]}.warc.gz"


def digest(data: bytes) -> str:
    """blake2b-128 hex of an object body, stored next to its key to skip unchanged PUTs."""
    return hashlib.blake2b(data, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class Blob:
    key: str
    data: bytes
    content_type: str


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    key: str
    size: int
    modified: float
    """Last-modified time, epoch seconds."""


class BlobStore(Protocol):
    """What the page store needs from an object store."""

    async def start(self) -> None:
        """Connect and make sure the bucket exists."""

    async def close(self) -> None: ...

    async def put_many(self, blobs: Sequence[Blob]) -> None:
        """Write every blob (overwriting); raise only after all attempts have finished."""

    async def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes | None:
        """The object's bytes (or ``length`` bytes from ``offset``), None if it does not exist."""

    async def delete_many(self, keys: Sequence[str]) -> None:
        """Remove objects (missing ones are fine)."""

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """Every object whose key starts with ``prefix``."""

    async def stat(self, key: str) -> ObjectInfo | None:
        """Size and age of one object, None if it does not exist."""


class MemoryBlobStore:
    """In-memory BlobStore for unit tests; counts PUTs like the real one costs them."""

    def __init__(self, clock: Callable[[], float] | None = None) -> None:
        self.objects: dict[str, bytes] = {}
        self.modified: dict[str, float] = {}
        self.puts = 0
        self.fail_next: StreamCrawlError | None = None
        self._clock = clock or time.time

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def put_many(self, blobs: Sequence[Blob]) -> None:
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        for blob in blobs:
            self.objects[blob.key] = blob.data
            self.modified[blob.key] = self._clock()
            self.puts += 1

    async def delete_many(self, keys: Sequence[str]) -> None:
        for key in keys:
            self.objects.pop(key, None)
            self.modified.pop(key, None)

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        return [
            ObjectInfo(k, len(v), self.modified[k])
            for k, v in sorted(self.objects.items())
            if k.startswith(prefix)
        ]

    async def stat(self, key: str) -> ObjectInfo | None:
        data = self.objects.get(key)
        return None if data is None else ObjectInfo(key, len(data), self.modified[key])

    async def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes | None:
        data = self.objects.get(key)
        if data is None:
            return None
        return data[offset:] if length is None else data[offset : offset + length]


def _s3_error(exc: Exception, what: str) -> StreamCrawlError:
    if isinstance(exc, S3Error) and exc.code in _RECORD_CODES:
        return RecordRejected(f"S3 refused {what}: {exc.code}: {exc.message}")
    if isinstance(exc, ValueError):
        return RecordRejected(f"S3 {what}: {exc}")
    return DependencyUnavailable(f"S3 {what}: {type(exc).__name__}: {exc}")


_S3_FAILURES = (S3Error, ServerError, InvalidResponseError, urllib3.exceptions.HTTPError, OSError, ValueError)


class S3BlobStore:
    """BlobStore on an S3 API (SeaweedFS locally, MinIO in production) via ``minio``."""

    def __init__(self, settings: S3Settings, *, parallelism: int = 32, timeout_s: float = 10.0) -> None:
        self.bucket = settings.bucket
        self._parallelism = max(1, parallelism)
        self._http = urllib3.PoolManager(
            maxsize=self._parallelism,
            timeout=urllib3.Timeout(connect=5.0, read=timeout_s),
            retries=urllib3.Retry(
                total=2,
                backoff_factor=0.2,
                status_forcelist=(500, 502, 503, 504),
                allowed_methods=None,  # a PUT retried to its never-reused key writes the same bytes
                raise_on_status=False,
            ),
        )
        self._client = Minio(
            settings.endpoint,
            access_key=settings.access_key,
            secret_key=settings.secret_key,
            secure=settings.secure,
            region=settings.region,
            http_client=self._http,
        )
        self._pool: ThreadPoolExecutor | None = None

    def _executor(self) -> ThreadPoolExecutor:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._parallelism, thread_name_prefix="s3")
        return self._pool

    async def start(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor(), self._ensure_bucket)

    def _ensure_bucket(self) -> None:
        try:
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
        except S3Error as exc:
            if exc.code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                raise _s3_error(exc, f"bucket {self.bucket!r}") from exc
        except _S3_FAILURES as exc:
            raise _s3_error(exc, f"bucket {self.bucket!r}") from exc

    async def close(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            # Queued calls are dropped; running ones (bounded by the timeouts) finish off the loop.
            await asyncio.to_thread(pool.shutdown, wait=True, cancel_futures=True)
        self._http.clear()

    def _put(self, blob: Blob) -> None:
        try:
            self._client.put_object(
                self.bucket, blob.key, io.BytesIO(blob.data), len(blob.data), content_type=blob.content_type
            )
        except _S3_FAILURES as exc:
            raise _s3_error(exc, f"PUT {blob.key}") from exc

    async def put_many(self, blobs: Sequence[Blob]) -> None:
        await self._run_all([functools.partial(self._put, blob) for blob in blobs])

    async def _run_all(self, calls: Sequence[Callable[[], None]]) -> None:
        """Run blocking calls on the pool; raise only once every one has finished."""
        if not calls:
            return
        loop = asyncio.get_running_loop()
        pool = self._executor()
        results = await asyncio.gather(
            *(loop.run_in_executor(pool, c) for c in calls), return_exceptions=True
        )
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            # A rejected record is the more specific verdict; otherwise report the first failure.
            rejected = [e for e in errors if isinstance(e, RecordRejected)]
            raise (rejected or errors)[0]

    def _delete(self, key: str) -> None:
        try:
            self._client.remove_object(self.bucket, key)
        except _S3_FAILURES as exc:
            raise _s3_error(exc, f"DELETE {key}") from exc

    async def delete_many(self, keys: Sequence[str]) -> None:
        await self._run_all([functools.partial(self._delete, key) for key in keys])

    def _get(self, key: str, offset: int, length: int | None) -> bytes | None:
        if length == 0:
            return b""
        response = None
        try:
            response = self._client.get_object(self.bucket, key, offset=offset, length=length or 0)
            return bytes(response.read())
        except S3Error as exc:
            if exc.code == "NoSuchKey":
                return None
            raise _s3_error(exc, f"GET {key}") from exc
        except _S3_FAILURES as exc:
            raise _s3_error(exc, f"GET {key}") from exc
        finally:
            if response is not None:
                response.close()
                response.release_conn()

    async def get(self, key: str, *, offset: int = 0, length: int | None = None) -> bytes | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor(), self._get, key, offset, length)

    def _list(self, prefix: str) -> list[ObjectInfo]:
        try:
            return [
                ObjectInfo(
                    o.object_name, int(o.size or 0), o.last_modified.timestamp() if o.last_modified else 0.0
                )
                for o in self._client.list_objects(self.bucket, prefix=prefix, recursive=True)
                if o.object_name is not None and not o.is_dir
            ]
        except _S3_FAILURES as exc:
            raise _s3_error(exc, f"LIST {prefix}") from exc

    async def list_objects(self, prefix: str) -> list[ObjectInfo]:
        return await asyncio.get_running_loop().run_in_executor(self._executor(), self._list, prefix)

    def _stat(self, key: str) -> ObjectInfo | None:
        try:
            o = self._client.stat_object(self.bucket, key)
        except S3Error as exc:
            if exc.code in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                return None
            raise _s3_error(exc, f"HEAD {key}") from exc
        except _S3_FAILURES as exc:
            raise _s3_error(exc, f"HEAD {key}") from exc
        return ObjectInfo(key, int(o.size or 0), o.last_modified.timestamp() if o.last_modified else 0.0)

    async def stat(self, key: str) -> ObjectInfo | None:
        return await asyncio.get_running_loop().run_in_executor(self._executor(), self._stat, key)
