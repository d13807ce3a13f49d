"""The one place StreamCrawl's Dagster definitions are assembled (workspace.yaml loads ``defs``).

Settings are parsed once here: ``DagsterSettings`` shapes the frontier partitions, the lag
alert and the checks. Resources read the workers' settings at run time; credentials are
``EnvVar``s, so the Dagster processes need ``STREAMCRAWL_PG_PASSWORD``,
``STREAMCRAWL_S3_ACCESS_KEY`` and ``STREAMCRAWL_S3_SECRET_KEY`` in their environment.

Sensor defaults: ``kafka_lag_sensor``, ``dlq_sensor`` and ``completion_sensor`` start
RUNNING (the stack is only observable and self-healing with them on; each is bounded and
cheap); the weekly list refresh schedule starts STOPPED (it needs internet access).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import Definitions, EnvVar, define_asset_job

from crawl_assets.assets.corpus_export import build_corpus_export
from crawl_assets.assets.frontier import build_crawl_frontier
from crawl_assets.assets.lists import tranco_list
from crawl_assets.assets.topics import kafka_topics
from crawl_assets.checks import build_checks
from crawl_assets.jobs import build_dlq_replay_job, lag_alert_job
from crawl_assets.partitions import frontier_keys, frontier_partitions
from crawl_assets.resources import KafkaResource, PostgresResource, S3Resource
from crawl_assets.schedules import build_frontier_recrawl, build_tranco_weekly_refresh
from crawl_assets.sensors.completion import build_completion_sensor
from crawl_assets.sensors.dlq import build_dlq_sensor
from crawl_assets.sensors.lag import build_kafka_lag_sensor
from crawl_assets.stages import build_stage_specs
from workers.settings import DagsterSettings

__all__ = ["build_definitions", "default_resources", "defs"]


def default_resources() -> dict[str, Any]:
    """Resources of the running stack: the workers' settings, credentials from the environment."""
    return {
        "kafka": KafkaResource(),
        "postgres": PostgresResource(password=EnvVar("STREAMCRAWL_PG_PASSWORD")),
        "s3": S3Resource(
            access_key=EnvVar("STREAMCRAWL_S3_ACCESS_KEY"), secret_key=EnvVar("STREAMCRAWL_S3_SECRET_KEY")
        ),
    }


def build_definitions(
    settings: DagsterSettings, *, resources: Mapping[str, Any] | None = None
) -> Definitions:
    frontier = frontier_partitions(settings)
    dlq_replay = build_dlq_replay_job(settings)
    tranco_refresh = define_asset_job(
        "tranco_refresh",
        selection=[tranco_list],
        description="Load one Tranco snapshot (the partition).",
    )
    crawl = build_crawl_frontier(frontier)
    recrawl_frontier = define_asset_job(
        "recrawl_frontier",
        selection=[crawl],
        partitions_def=frontier,
        description="Re-crawl frontier partitions (launched by the frontier_recrawl schedule).",
    )
    provision_topics = define_asset_job(
        "provision_topics",
        selection=[kafka_topics],
        description="Create the registry's missing topics; report drift (partitions, configs).",
    )
    return Definitions(
        assets=[
            tranco_list,
            kafka_topics,
            crawl,
            *build_stage_specs(frontier),
            build_corpus_export(frontier),
        ],
        asset_checks=build_checks(settings),
        jobs=[dlq_replay, lag_alert_job, provision_topics, tranco_refresh, recrawl_frontier],
        sensors=[
            build_kafka_lag_sensor(settings, lag_alert_job),
            build_dlq_sensor(dlq_replay, settings),
            build_completion_sensor(settings, frontier_keys(settings)),
        ],
        schedules=[
            build_tranco_weekly_refresh(tranco_refresh),
            build_frontier_recrawl(recrawl_frontier, settings),
        ],
        resources=dict(resources) if resources is not None else default_resources(),
    )


defs = build_definitions(DagsterSettings())
