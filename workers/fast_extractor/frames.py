"""The framing between the fast extractor daemon and its extraction processes (pipes).

Request: ``u32 length`` + record value. Reply: ``u8 status`` + ``u32 key length`` + key +
``u32 payload length`` + payload; status ``OK`` carries the encoded ProcessedPage,
``ERROR_DECODE``/``ERROR_EXTRACT`` an error message (UTF-8). Big-endian lengths.
"""

from __future__ import annotations

import struct
from typing import BinaryIO, Final

__all__ = ["ERROR_DECODE", "ERROR_EXTRACT", "OK", "pack_request", "read_frame", "write_frame"]

OK: Final = 0
ERROR_DECODE: Final = 1
ERROR_EXTRACT: Final = 2
U32: Final = struct.Struct(">I")
REPLY_HEAD: Final = struct.Struct(">BI")


def pack_request(value: bytes) -> bytes:
    return U32.pack(len(value)) + value


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = stream.read(size)
    return data if data is not None and len(data) == size else None


def read_frame(stream: BinaryIO) -> bytes | None:
    """One request from ``stream``; None at end of input."""
    head = _read_exactly(stream, U32.size)
    if head is None:
        return None
    (size,) = U32.unpack(head)
    return _read_exactly(stream, size) if size else b""


def write_frame(stream: BinaryIO, status: int, key: bytes, payload: bytes) -> None:
    stream.write(REPLY_HEAD.pack(status, len(key)) + key + U32.pack(len(payload)) + payload)
    stream.flush()
