"""The ingestor benchmark runs (quick mode) and returns well-formed rows; no speed is asserted."""

from __future__ import annotations

import pytest

from bench import stage_ingestor

pytestmark = pytest.mark.integration


def test_bench_quick_runs() -> None:
    rows = stage_ingestor.bench(quick=True)
    assert rows and all(row["section"] == "ingestor" for row in rows)
    for row in rows:
        assert {"metric", "value", "baseline", "baseline_value", "target"} <= row.keys()
        assert row["value"] > 0
    assert any(row["metric"].startswith("HTTPS") for row in rows)
