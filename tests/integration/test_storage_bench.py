"""The storage benchmark runs (quick mode) and returns well-formed rows; speed is not asserted."""

from __future__ import annotations

import pytest

from bench.stage_storage import bench

pytestmark = pytest.mark.integration


def test_storage_bench_quick_runs() -> None:
    rows = bench(quick=True)
    metrics = {row["metric"] for row in rows}
    assert any("WARC layout" in m for m in metrics) and any("redelivery" in m for m in metrics)
    for row in rows:
        assert {"section", "metric", "value", "baseline", "baseline_value", "target", "note"} <= set(row)
        assert row["value"] > 0
