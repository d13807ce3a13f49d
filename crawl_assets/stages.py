"""The hot path's outputs as external assets, derived from the topic registry.

Each stage asset stands for one or more topics. Who writes and who reads them is not
restated here: it is derived from ``workers.topics.STAGES`` (a stage produces its outputs
and its DLQ; it consumes its input), and so are the lineage edges.
"""

from __future__ import annotations

from dataclasses import dataclass

from dagster import AssetKey, AssetSpec, PartitionsDefinition

from workers.topics import (
    CRAWL_REQUEST,
    DLQ_TOPICS,
    PROCESS_FAST,
    PROCESS_RICH,
    PROCESSED_FINAL,
    RAW_PAGE,
    STAGES,
    STORAGE_SAVED,
    Stage,
    Topic,
)

__all__ = [
    "FRONTIER_KEY",
    "PIPELINE_ASSETS",
    "STAGE_ASSETS",
    "STORED_PAGES",
    "StageAsset",
    "build_stage_specs",
    "dlq_asset_key",
]

FRONTIER_KEY = AssetKey("crawl_frontier")
STORED_PAGES = AssetKey("stored_pages")


def dlq_asset_key(topic: Topic) -> AssetKey:
    """``raw.page.dlq`` -> ``raw_page_dlq``."""
    return AssetKey(topic.name.replace(".", "_"))


@dataclass(frozen=True, slots=True)
class StageAsset:
    key: AssetKey
    topics: tuple[Topic, ...]
    description: str

    @property
    def producers(self) -> tuple[Stage, ...]:
        return tuple(
            s
            for s, t in STAGES.items()
            if set(self.topics) & ({*t.outputs} | ({t.dlq} if self.is_dlq else set()))
        )

    @property
    def consumers(self) -> tuple[Stage, ...]:
        return tuple(s for s, t in STAGES.items() if set(t.inputs) & set(self.topics))

    @property
    def is_dlq(self) -> bool:
        return all(t.is_dlq for t in self.topics)

    @property
    def upstream(self) -> tuple[AssetKey, ...]:
        """Assets of the topics the producing stages read."""
        keys: list[AssetKey] = []
        for stage in self.producers:
            key = _TOPIC_ASSET[STAGES[stage].input.name]
            if key not in keys:
                keys.append(key)
        return tuple(keys)


PIPELINE_ASSETS: tuple[StageAsset, ...] = (
    StageAsset(AssetKey("raw_pages"), (RAW_PAGE,), "Fetched pages on raw.page, written by the ingestor."),
    StageAsset(
        AssetKey("routed_pages"),
        (PROCESS_FAST, PROCESS_RICH),
        "Pages the router sent to the fast extractor (process.fast) or the rich renderer (process.rich).",
    ),
    StageAsset(
        AssetKey("processed_pages"),
        (PROCESSED_FINAL,),
        "Extracted pages on processed.final, ready for storage.",
    ),
    StageAsset(
        STORED_PAGES,
        (STORAGE_SAVED,),
        "Pages written to PostgreSQL and S3 (storage.saved). One partition per frontier partition, "
        "materialised by completion_sensor once every URL of it is stored or dead-lettered.",
    ),
)
STAGE_ASSETS: tuple[StageAsset, ...] = PIPELINE_ASSETS + tuple(
    StageAsset(dlq_asset_key(t), (t,), f"Dead letters: {t.description}") for t in DLQ_TOPICS
)
_TOPIC_ASSET: dict[str, AssetKey] = {CRAWL_REQUEST.name: FRONTIER_KEY} | {
    t.name: a.key for a in PIPELINE_ASSETS for t in a.topics
}


def build_stage_specs(frontier: PartitionsDefinition) -> list[AssetSpec]:
    """External asset specs: observed by sensors, never computed by a run."""
    specs = []
    for a in STAGE_ASSETS:
        specs.append(
            AssetSpec(
                a.key,
                deps=a.upstream,
                description=a.description,
                group_name="dead_letters" if a.is_dlq else "pipeline",
                kinds={"kafka"},
                partitions_def=frontier if a.key == STORED_PAGES else None,
                metadata={
                    "topics": ", ".join(t.name for t in a.topics),
                    "written by": ", ".join(s.value for s in a.producers),
                    "read by": ", ".join(s.value for s in a.consumers) or "-",
                },
            )
        )
    return specs
