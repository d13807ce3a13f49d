"""The rich renderer benchmark runs (quick mode) and returns well-formed rows; speed is not asserted."""

from __future__ import annotations

import re

import pytest

from bench.stage_rich import bench

pytestmark = [pytest.mark.integration, pytest.mark.browser]


async def test_rich_bench_quick_runs() -> None:
    rows = await bench(quick=True)
    assert [row["metric"].split(" (")[0] for row in rows] == [
        "pages/s",
        "Python CPU s/page",
        "peak Chromium memory, MB",
    ]
    for row in rows:
        assert {"section", "metric", "value", "baseline", "baseline_value", "target", "note"} <= set(row)
        assert row["value"] > 0 and row["baseline_value"] > 0
    assert re.search(r"\b(\d+)/\1 rendered", rows[0]["note"]), rows[0]["note"]  # every page rendered
