"""Kafka client construction, shared by workers, the CLI, Dagster resources and tests.

Portable across Apache Kafka and the embedded Tansu broker: no idempotent or
transactional producer (Tansu cannot start one; at-least-once + idempotent sinks instead),
and consumer lag is computed from the high watermark seen in fetch responses, never from
``end_offsets()`` (wrong on Tansu). See ARCHITECTURE.md.
"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient

from workers.settings import KafkaSettings
from workers.topics import MAX_MESSAGE_BYTES

__all__ = ["client_kwargs", "make_admin", "make_consumer", "make_producer"]


def client_kwargs(settings: KafkaSettings) -> dict[str, Any]:
    """Connection arguments common to producers, consumers and admin clients."""
    kwargs: dict[str, Any] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "security_protocol": settings.security_protocol,
    }
    if settings.sasl_mechanism:
        kwargs["sasl_mechanism"] = settings.sasl_mechanism
        kwargs["sasl_plain_username"] = settings.sasl_username
        kwargs["sasl_plain_password"] = settings.sasl_password
    if settings.security_protocol in ("SSL", "SASL_SSL"):
        from aiokafka.helpers import create_ssl_context

        kwargs["ssl_context"] = create_ssl_context()
    return kwargs


def make_producer(settings: KafkaSettings, *, client_id: str = "streamcrawl") -> AIOKafkaProducer:
    """An acks=all, compressing, batching producer (not idempotent: see module doc)."""
    return AIOKafkaProducer(
        **client_kwargs(settings),
        client_id=client_id,
        acks="all",
        enable_idempotence=False,
        compression_type=None if settings.compression == "none" else settings.compression,
        linger_ms=settings.linger_ms,
        max_batch_size=settings.max_batch_bytes,
        max_request_size=MAX_MESSAGE_BYTES,
        request_timeout_ms=settings.request_timeout_ms,
    )


def make_consumer(
    settings: KafkaSettings,
    *topics: str,
    group_id: str | None,
    client_id: str = "streamcrawl",
    max_poll_records: int = 500,
    auto_offset_reset: str = "earliest",
) -> AIOKafkaConsumer:
    """A manual-commit consumer (commits happen only after downstream success)."""
    return AIOKafkaConsumer(
        *topics,
        **client_kwargs(settings),
        client_id=client_id,
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset=auto_offset_reset,
        max_poll_records=max_poll_records,
        fetch_max_bytes=64 * 1024 * 1024,
        fetch_min_bytes=settings.fetch_min_bytes,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        max_partition_fetch_bytes=MAX_MESSAGE_BYTES,
        session_timeout_ms=settings.session_timeout_ms,
        heartbeat_interval_ms=settings.heartbeat_interval_ms,
        rebalance_timeout_ms=max(settings.session_timeout_ms * 3, 30_000),
    )


def make_admin(settings: KafkaSettings, *, client_id: str = "streamcrawl-admin") -> AIOKafkaAdminClient:
    return AIOKafkaAdminClient(
        **client_kwargs(settings), client_id=client_id, request_timeout_ms=settings.request_timeout_ms
    )
