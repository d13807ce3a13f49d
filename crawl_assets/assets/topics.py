"""``kafka_topics``: the topic registry provisioned on the cluster, drift as metadata."""

# No `from __future__ import annotations` here: Dagster reads the context and resource
# annotations of decorated functions at definition time and cannot resolve strings.

from dagster import AssetExecutionContext, MaterializeResult, MetadataValue, asset

from crawl_assets.aio import run_sync
from crawl_assets.resources import KafkaResource
from workers.provision import provision
from workers.topics import REGISTRY

__all__ = ["kafka_topics"]


def _registry_table() -> str:
    rows = ["| topic | partitions | retention h | role |", "|---|---:|---:|---|"]
    rows += [f"| {t.name} | {t.partitions} | {t.retention_hours:g} | {t.description} |" for t in REGISTRY]
    return "\n".join(rows)


@asset(
    group_name="crawl",
    kinds={"kafka"},
    description="Every topic of workers.topics.REGISTRY exists with its partitions and configs. "
    "Idempotent: creates what is missing; drift on existing topics is reported, never altered.",
)
def kafka_topics(context: AssetExecutionContext, kafka: KafkaResource) -> MaterializeResult[None]:
    report = run_sync(provision(kafka.settings()))
    context.log.info("topics: %s", report.summary())
    for drift in report.drift:
        context.log.warning("topic drift: %s", drift)
    return MaterializeResult(
        metadata={
            "created": len(report.created),
            "existing": len(report.existing),
            "drift_count": len(report.drift),
            "in_sync": report.in_sync,
            "drift": MetadataValue.json(report.as_dict()["drift"]),
            "configs_unverifiable": ", ".join(report.configs_unverifiable) or "none",
            "registry": MetadataValue.md(_registry_table()),
        }
    )
