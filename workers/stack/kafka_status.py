"""Per-topic log ends, per-group lag, oldest unconsumed record age and DLQ depths, for `streamcrawl status`.

Log ends are the high watermarks of fetch responses (a group-less consumer fetches once
from every partition); lag is that minus the group's committed offset, read with the
partitions passed explicitly (see workers/lag.py and ARCHITECTURE.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiokafka.errors import KafkaError

from workers.lag import GroupLag, OldestUnconsumed, group_lag, high_watermarks, oldest_unconsumed
from workers.settings import KafkaSettings
from workers.topics import REGISTRY, STAGES, Stage

__all__ = ["KafkaStatus", "kafka_status"]


@dataclass(frozen=True, slots=True)
class KafkaStatus:
    high_watermarks: dict[str, dict[int, int]] = field(default_factory=dict)
    lags: dict[Stage, GroupLag] = field(default_factory=dict)
    oldest: dict[Stage, OldestUnconsumed] = field(default_factory=dict)
    error: str | None = None

    def dlq_depths(self) -> dict[str, int]:
        return {t.name: sum(self.high_watermarks.get(t.name, {}).values()) for t in REGISTRY if t.is_dlq}

    def as_dict(self) -> dict[str, Any]:
        return {
            "error": self.error,
            "topics": {
                t.name: {
                    "partitions": len(self.high_watermarks.get(t.name, {})),
                    "high_watermark": sum(self.high_watermarks.get(t.name, {}).values()),
                }
                for t in REGISTRY
            },
            "groups": {
                lag.group: {
                    "stage": stage.value,
                    "topic": lag.topic,
                    "committed": sum(lag.committed.values()),
                    "lag": lag.total,
                    "oldest_unconsumed_s": round(self.oldest[stage].oldest_s, 1)
                    if stage in self.oldest
                    else None,
                    "retention_s": STAGES[stage].input.retention_hours * 3600,
                }
                for stage, lag in self.lags.items()
            },
            "dlq": self.dlq_depths(),
        }


async def kafka_status(kafka: KafkaSettings, *, timeout_s: float = 8.0) -> KafkaStatus:
    """Topic ends, group lags and DLQ depths; a broker problem becomes ``error``, not an exception."""
    try:
        async with asyncio.timeout(timeout_s):
            watermarks = await high_watermarks(kafka, REGISTRY, timeout_s=timeout_s / 2)
            stages = list(STAGES)
            lags = await asyncio.gather(
                *(group_lag(kafka, STAGES[s].group, STAGES[s].input, watermarks=watermarks) for s in stages)
            )
            ages = await asyncio.gather(
                *(
                    oldest_unconsumed(kafka, lag.group, STAGES[s].input, lag=lag, timeout_s=timeout_s / 4)
                    for s, lag in zip(stages, lags, strict=True)
                )
            )
    except (KafkaError, OSError, TimeoutError) as exc:
        return KafkaStatus(error=f"{type(exc).__name__}: {exc}".strip(": "))
    return KafkaStatus(
        high_watermarks=watermarks,
        lags=dict(zip(stages, lags, strict=True)),
        oldest=dict(zip(stages, ages, strict=True)),
    )
