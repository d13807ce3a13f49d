"""Partitions shared by assets, checks and sensors.

* ``tranco_lists``: dynamic, one partition per list snapshot (Tranco list id or date).
* the frontier: static rank ranges ``0000001-0001000``, ``0001001-0002000``, ... up to
  ``DagsterSettings.frontier_max_rank`` in steps of ``frontier_partition_size``; ranks are
  zero-padded to the width of the max rank so keys sort in rank order.
"""

from __future__ import annotations

from dagster import DynamicPartitionsDefinition, StaticPartitionsDefinition

from workers.errors import ConfigError
from workers.settings import DagsterSettings

__all__ = ["TRANCO_PARTITIONS", "frontier_keys", "frontier_partitions", "rank_range"]

TRANCO_PARTITIONS = DynamicPartitionsDefinition(name="tranco_lists")


def frontier_keys(settings: DagsterSettings) -> list[str]:
    size, top = settings.frontier_partition_size, settings.frontier_max_rank
    if size < 1 or top < 1:
        raise ConfigError("frontier_partition_size and frontier_max_rank must be positive")
    width = len(str(top))
    return [f"{lo:0{width}d}-{min(lo + size - 1, top):0{width}d}" for lo in range(1, top + 1, size)]


def frontier_partitions(settings: DagsterSettings) -> StaticPartitionsDefinition:
    return StaticPartitionsDefinition(frontier_keys(settings))


def rank_range(key: str) -> tuple[int, int]:
    """First and last rank (inclusive) of a frontier partition key."""
    first, sep, last = key.partition("-")
    if not sep or not first.isdigit() or not last.isdigit() or int(first) > int(last):
        raise ConfigError(f"not a frontier partition key: {key!r} (expected e.g. 0000001-0001000)")
    return int(first), int(last)
