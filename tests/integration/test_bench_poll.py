"""The progress-poll benchmark (bench/stage_poll.py) on a small scale: the seeded batches add up
and a poll touches the same PostgreSQL buffers whatever the batch size; speed is not asserted."""

from __future__ import annotations

import pytest

from bench.stage_poll import _measure
from tests.integration.test_storage_store import database
from workers.settings import PostgresSettings

pytestmark = pytest.mark.integration
__all__ = ["database"]  # the fixture, imported for its use here


async def test_a_poll_costs_the_same_buffers_at_either_size(database: PostgresSettings) -> None:
    m = await _measure(database, (100, 3_000), polls=10)
    assert m["rows"] == {100: 100, 3_000: 3_000}
    assert m["buffers"][3_000] == m["buffers"][100] > 0
    assert all(len(v) == 10 for v in m["times"].values()) and len(m["both"]) == 10
