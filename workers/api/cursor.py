"""Opaque keyset cursors: the sort key of the last item returned, base64url-encoded JSON.

A cursor names its kind (``relevance``, ``recent``, ``batches``, ``dlq``) so that one
route's cursor cannot be replayed against another ordering; anything that does not decode
to the expected kind is a 422 that says to drop it.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from workers.api.errors import ApiError, ErrorDetail

__all__ = ["bad_cursor", "decode_cursor", "encode_cursor"]

_MAX_CHARS = 4096


def encode_cursor(kind: str, values: list[Any]) -> str:
    raw = json.dumps([kind, *values], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def bad_cursor(kind: str) -> ApiError:
    return ApiError(
        422,
        "cursor is not one this route returned for this ordering: pass the next_cursor of the"
        " previous page unchanged, or omit cursor to start at the first page",
        details=[ErrorDetail(where="query.cursor", problem=f"not a {kind} cursor")],
    )


def decode_cursor(cursor: str, kind: str, types: tuple[type, ...]) -> list[Any]:
    """The values of a cursor of ``kind``, each checked against ``types`` (422 otherwise)."""
    if len(cursor) > _MAX_CHARS:
        raise bad_cursor(kind)
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        data = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise bad_cursor(kind) from None
    if not isinstance(data, list) or len(data) != len(types) + 1 or data[0] != kind:
        raise bad_cursor(kind)
    values = data[1:]
    for value, typ in zip(values, types, strict=True):
        ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
        if typ is float:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise bad_cursor(kind)
    return values
