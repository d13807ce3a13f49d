"""Dead letters that always fit in their topic.

A ``DeadLetter`` carries the original record byte for byte. When that record is itself
close to the size limit, the letter around it would not fit, and a letter that cannot be
produced would block its partition forever. Such a payload is cut to what fits; the
letter says so (``payload_truncated`` and its message), so replay tools park it instead of
replaying half a record.
"""

from __future__ import annotations

import time
from typing import Any

from workers.messages import DeadLetter, encode, peek
from workers.topics import MAX_MESSAGE_BYTES

__all__ = ["LETTER_HEADROOM_BYTES", "build_letter"]

LETTER_HEADROOM_BYTES = 64 * 1024
"""Room kept below the topic's limit for the record batch framing and headers."""


def build_letter(
    *,
    record: Any,
    stage: str,
    exc: BaseException,
    attempt: int,
    first_failure_at: float,
    max_bytes: int = MAX_MESSAGE_BYTES,
) -> tuple[DeadLetter, bytes]:
    """The letter for ``record`` (an aiokafka ConsumerRecord) and its encoding, within ``max_bytes``."""
    payload: bytes = record.value or b""
    seen = peek(payload)
    letter = DeadLetter(
        payload=payload,
        key=record.key,
        source_topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        stage=stage,
        error_class=type(exc).__name__,
        error_message=str(exc)[:2000] or type(exc).__name__,
        attempt=attempt,
        first_failure_at=first_failure_at,
        last_failure_at=time.time(),
        url=seen.get("url"),
        url_hash=seen.get("url_hash"),
        batch=seen.get("batch"),
        rank=seen.get("rank"),
    )
    encoded = encode(letter)
    budget = max_bytes - LETTER_HEADROOM_BYTES
    if len(encoded) <= budget:
        return letter, encoded
    overhead = len(encoded) - len(payload)
    keep = max(0, budget - overhead - 256)  # 256: the note added to the message below
    letter.payload = payload[:keep]
    letter.payload_truncated = True
    letter.error_message += f" (payload copy truncated to {keep} of {len(payload)} bytes)"
    return letter, encode(letter)
