"""The code location resolves: every job, sensor, schedule, asset and check."""

from __future__ import annotations

import pytest
from dagster import AssetKey, DefaultScheduleStatus, DefaultSensorStatus

from crawl_assets.definitions import build_definitions, defs
from crawl_assets.partitions import frontier_keys, rank_range
from crawl_assets.stages import STAGE_ASSETS
from workers.errors import ConfigError
from workers.settings import DagsterSettings
from workers.topics import DLQ_TOPICS

# Dagster itself passes a beta parameter (`owners`) when it attaches jobs to sensors.
pytestmark = pytest.mark.filterwarnings("ignore::dagster_shared.utils.warnings.BetaWarning")


def test_every_job_sensor_schedule_and_asset_resolves() -> None:
    jobs = {j.name for j in defs.resolve_all_job_defs()}
    assert {"dlq_replay", "lag_alert", "provision_topics", "tranco_refresh"} <= jobs
    for name in ("dlq_replay", "lag_alert", "provision_topics", "tranco_refresh"):
        assert defs.resolve_job_def(name).name == name
    sensors = {s.name: s for s in defs.sensors or []}
    assert set(sensors) == {"kafka_lag_sensor", "dlq_sensor", "completion_sensor"}
    for sensor in sensors.values():
        assert defs.resolve_sensor_def(sensor.name).default_status == DefaultSensorStatus.RUNNING
    assert defs.resolve_schedule_def("tranco_weekly_refresh").default_status == DefaultScheduleStatus.STOPPED
    graph = defs.resolve_asset_graph()
    keys = {k.to_user_string() for k in graph.get_all_asset_keys()}
    expected = {
        "tranco_list",
        "crawl_frontier",
        "raw_pages",
        "routed_pages",
        "processed_pages",
        "stored_pages",
    }
    expected |= {t.name.replace(".", "_") for t in DLQ_TOPICS}
    assert expected <= keys
    checks = {(k.asset_key.to_user_string(), k.name) for k in graph.asset_check_keys}
    assert ("stored_pages", "partition_complete") in checks
    assert ("stored_pages", "dlq_rate_below_threshold") in checks
    assert {("raw_pages", "stage_fresh"), ("stored_pages", "stage_fresh")} <= checks
    assert graph.get(AssetKey("stored_pages")).partitions_def is not None
    assert not graph.get(AssetKey("raw_pages")).is_materializable  # external: observed, not computed


def test_frontier_partitions_follow_the_settings() -> None:
    keys = frontier_keys(DagsterSettings())
    assert len(keys) == 1000
    assert keys[0] == "0000001-0001000" and keys[-1] == "0999001-1000000"
    assert keys == sorted(keys)
    small = frontier_keys(DagsterSettings(frontier_max_rank=2500, frontier_partition_size=1000))
    assert small == ["0001-1000", "1001-2000", "2001-2500"]
    assert rank_range("1001-2000") == (1001, 2000)
    with pytest.raises(ConfigError):
        rank_range("latest")
    small_defs = build_definitions(DagsterSettings(frontier_max_rank=20, frontier_partition_size=10))
    partitions = small_defs.resolve_asset_graph().get(AssetKey("crawl_frontier")).partitions_def
    assert partitions is not None and partitions.get_partition_keys() == [
        "01-10",
        "11-20",
    ]


def test_stage_assets_are_derived_from_the_registry() -> None:
    by_name = {a.key.to_user_string(): a for a in STAGE_ASSETS}
    assert [s.value for s in by_name["routed_pages"].consumers] == ["fast_extractor", "rich_renderer"]
    assert [k.to_user_string() for k in by_name["raw_page_dlq"].upstream] == ["crawl_frontier", "raw_pages"]
    assert by_name["storage_dlq"].is_dlq and not by_name["stored_pages"].is_dlq
