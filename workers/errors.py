"""StreamCrawl's one error tree.

::

    StreamCrawlError                    base of everything StreamCrawl raises on purpose
    ├── ConfigError                     bad settings or CLI input; the message says what to fix
    ├── StackError                      an embedded-stack component failed to start/stop
    │   └── PortInUseError              a configured port is taken (names the setting to change)
    ├── RetryableError                  transient: retry with exponential backoff + jitter
    │   ├── TransientFetchError         timeout, connection reset, 5xx, 429 (retry_after honoured)
    │   └── DependencyUnavailable       Kafka / PostgreSQL / S3 not reachable right now
    └── PermanentError                  retrying cannot help: dead-letter with the reason
        ├── MessageDecodeError          truncated msgpack, bad zstd, unknown version, missing field
        ├── PermanentFetchError         4xx, DNS failure, TLS failure after retries
        ├── BlockedError                robots.txt disallow, SSRF guard, open circuit breaker
        ├── ExtractionError             a page that cannot be turned into a ProcessedPage
        ├── RecordRejected              a record the sink refuses (bad url_hash, value PostgreSQL rejects)
        ├── RenderTimeout               the browser did not finish rendering within the page deadline
        ├── ProduceRefused              Kafka refuses an output record for good (too large, corrupt)
        └── WorkerCrashed               the stage's process died N times while handling the record alone

Workers decide with one rule: a ``RetryableError`` is retried up to the stage's attempt
budget and then dead-lettered; a ``PermanentError`` (or any unexpected exception, which
is treated as a poison message) is dead-lettered with its class and message. Nothing is
acknowledged and silently dropped.
"""

from __future__ import annotations

__all__ = [
    "BlockedError",
    "ConfigError",
    "DependencyUnavailable",
    "ExtractionError",
    "MessageDecodeError",
    "PermanentError",
    "PermanentFetchError",
    "PortInUseError",
    "ProduceRefused",
    "RecordRejected",
    "RenderTimeout",
    "RetryableError",
    "StackError",
    "StreamCrawlError",
    "TransientFetchError",
    "WorkerCrashed",
]


class StreamCrawlError(Exception):
    """Base class of every error StreamCrawl raises on purpose."""


class ConfigError(StreamCrawlError):
    """Invalid settings or command-line input. The message says what to change."""


class StackError(StreamCrawlError):
    """An embedded-stack component could not be started, checked or stopped."""


class PortInUseError(StackError):
    """A port the stack needs is taken by another process."""

    def __init__(self, *, component: str, port: int, setting: str) -> None:
        super().__init__(
            f"{component}: port 127.0.0.1:{port} is already in use by another process; "
            f"set {setting} to a free port (or stop what is listening there)"
        )
        self.component = component
        self.port = port
        self.setting = setting


class RetryableError(StreamCrawlError):
    """A transient failure: the same input may succeed later."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientFetchError(RetryableError):
    """A fetch failed in a way that may pass: timeout, connection error, 5xx, 429."""


class DependencyUnavailable(RetryableError):
    """A service the stage depends on (Kafka, PostgreSQL, S3) is unreachable."""


class PermanentError(StreamCrawlError):
    """Retrying cannot help; the input goes to the stage's dead-letter topic."""


class MessageDecodeError(PermanentError):
    """A Kafka record could not be decoded into the expected message type.

    Raised for truncated or invalid msgpack, invalid zstd data, an unknown schema
    version or message type, and missing or mistyped fields. Workers dead-letter the
    record with this error; they never crash on it.
    """


class PermanentFetchError(PermanentError):
    """A fetch failed for good: 4xx, DNS failure, TLS failure after retries."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class BlockedError(PermanentError):
    """Fetching is not allowed: robots.txt disallow, SSRF guard, open circuit breaker."""


class ExtractionError(PermanentError):
    """A page could not be turned into a ProcessedPage."""


class RecordRejected(PermanentError):
    """A record the storage layer cannot store: a bad url_hash or a value PostgreSQL rejects."""


class RenderTimeout(PermanentError):
    """The headless browser did not finish rendering a page within its deadline.

    Permanent for the message: a page that never finishes loading will not load on retry;
    the rich renderer falls back to the raw HTML or dead-letters it.
    """


class ProduceRefused(PermanentError):
    """Kafka refuses a record the stage produced, for good: too large, corrupt, bad timestamp.

    The input record it was produced for is dead-lettered with this reason (see
    workers/lifecycle/outputs.py for which produce errors count as the record's fault).
    """


class WorkerCrashed(PermanentError):
    """The stage's process died repeatedly while handling this record on its own.

    Counted durably across restarts (workers/lifecycle/crashes.py), so a record that kills
    the process is dead-lettered after ``STREAMCRAWL_WORKER_MAX_CRASHES`` deaths.
    """
