"""``python -m workers.fast_extractor.child``: one extraction process of the fast extractor.

Reads frames from stdin, writes one reply frame per request to stdout (see
workers/fast_extractor/pool.py for the framing). A request is a ``process.fast`` record
value (a msgpack RoutedPage) exactly as consumed; the reply carries the encoded
ProcessedPage and its Kafka key, or the error class and message. Settings come from the
environment, parsed once at start.

SIGTERM and SIGINT are ignored: supervisord and the tests signal the whole process group,
and the daemon must be able to finish its in-flight pages while it drains. The process
exits when its stdin closes (the daemon closed it, or died).
"""

from __future__ import annotations

import signal
import sys
from typing import BinaryIO

from workers.errors import ExtractionError, MessageDecodeError
from workers.fast_extractor.frames import ERROR_DECODE, ERROR_EXTRACT, OK, read_frame, write_frame
from workers.fast_extractor.processing import process_routed
from workers.messages import RoutedPage, decode, encode
from workers.settings import Settings

__all__ = ["serve"]


def handle(value: bytes, settings: Settings) -> tuple[int, bytes, bytes]:
    """(status, key, payload) for one request."""
    try:
        routed = decode(value, RoutedPage)
    except MessageDecodeError as exc:
        return ERROR_DECODE, b"", str(exc).encode()
    try:
        processed = process_routed(
            routed, route="fast", settings=settings.extractor, user_agent=settings.ingestor.user_agent
        )
        return OK, processed.host.encode(), encode(processed)
    except MessageDecodeError as exc:  # the body's zstd is invalid
        return ERROR_DECODE, b"", str(exc).encode()
    except ExtractionError as exc:
        return ERROR_EXTRACT, b"", str(exc).encode()
    except Exception as exc:  # noqa: BLE001 - a poison page must not take the process down
        return ERROR_EXTRACT, b"", f"unexpected {type(exc).__name__}: {exc}".encode()


def serve(stdin: BinaryIO, stdout: BinaryIO, settings: Settings) -> None:
    """Say ready (an empty OK reply: imports are done), then answer requests until stdin closes."""
    write_frame(stdout, OK, b"", b"")
    while True:
        request = read_frame(stdin)
        if request is None:
            return
        status, key, payload = handle(request, settings)
        write_frame(stdout, status, key, payload)


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        serve(sys.stdin.buffer, sys.stdout.buffer, Settings.load())
    except BrokenPipeError:  # the daemon went away mid-reply
        sys.exit(0)
