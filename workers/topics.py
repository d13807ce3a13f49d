"""The topic registry: the single source of truth for every Kafka topic and consumer group.

No other module spells a topic name as a string literal; they import the constants here.

Flow::

    crawl.request ─► ingestor ─► raw.page ─► router ─► process.fast ─► fast extractor ─┐
         ▲              └─► raw.sitemap ─┐         └► process.rich ─► rich renderer ──┤
         │                               ▼                                              │
         └──── discovery ◄── storage.saved ◄─ storage writer ◄─ processed.final ◄───────┘
                   ▲
    every stage ─► its dead-letter topic (raw.page.dlq, processed.dlq, storage.dlq, discovery.dlq);
    discovery reads all but its own to record each URL's outcome
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = [
    "CRAWL_REQUEST",
    "DISCOVERY_DLQ",
    "DLQ_TOPICS",
    "PROCESSED_DLQ",
    "PROCESSED_FINAL",
    "PROCESS_FAST",
    "PROCESS_RICH",
    "RAW_PAGE",
    "RAW_PAGE_DLQ",
    "RAW_SITEMAP",
    "REGISTRY",
    "STAGES",
    "STORAGE_DLQ",
    "STORAGE_SAVED",
    "Stage",
    "StageTopics",
    "Topic",
    "topic_by_name",
]

_HOUR_MS = 3_600_000
_WEEK_H = 7 * 24
# Pages up to the raw-size cap (5 MB by default) travel zstd-compressed; leave room above
# Kafka's 1 MB default so a compressed large page is never refused by the broker.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Topic:
    """One Kafka topic: its name, partition count and topic-level configs."""

    name: str
    partitions: int
    retention_hours: float
    description: str
    extra_configs: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    @property
    def is_dlq(self) -> bool:
        return self.name.endswith(".dlq")

    @property
    def configs(self) -> dict[str, str]:
        """Topic configs as Kafka expects them (all values are strings)."""
        return {
            "retention.ms": str(int(self.retention_hours * _HOUR_MS)),
            "max.message.bytes": str(MAX_MESSAGE_BYTES),
            **self.extra_configs,
        }

    def __str__(self) -> str:
        return self.name


# Retention is sized against the worst backlog (the reasoning is in docs/production.md,
# "Retention"): a hot topic must outlast the longest time its consumers can plausibly be
# behind, and the retention check alerts at half of it. DLQs keep 7 days for replay.
CRAWL_REQUEST = Topic(
    "crawl.request", 12, _WEEK_H, "Frontier input: one CrawlRequest per URL, keyed by host."
)
RAW_PAGE = Topic("raw.page", 12, 24, "Fetched pages (RawPage, zstd HTML), keyed by host.")
RAW_PAGE_DLQ = Topic("raw.page.dlq", 3, _WEEK_H, "Dead letters of the ingestor and the router.")
PROCESS_FAST = Topic("process.fast", 8, 24, "Pages routed to the fast extractor (RoutedPage).")
PROCESS_RICH = Topic("process.rich", 4, 72, "Pages routed to the rich renderer (RoutedPage).")
PROCESSED_FINAL = Topic("processed.final", 12, 24, "Extracted pages (ProcessedPage) ready for storage.")
PROCESSED_DLQ = Topic(
    "processed.dlq", 3, _WEEK_H, "Dead letters of the fast extractor and the rich renderer."
)
STORAGE_SAVED = Topic("storage.saved", 6, 72, "One StoredPage per page written to PostgreSQL and S3.")
STORAGE_DLQ = Topic("storage.dlq", 3, _WEEK_H, "Dead letters of the storage writer.")
RAW_SITEMAP = Topic(
    "raw.sitemap",
    6,
    24,
    "Fetched robots.txt and sitemap bodies (RawPage of kind robots/sitemap) for discovery.",
)
DISCOVERY_DLQ = Topic("discovery.dlq", 3, _WEEK_H, "Dead letters of the discovery stage.")

REGISTRY: tuple[Topic, ...] = (
    CRAWL_REQUEST,
    RAW_PAGE,
    RAW_PAGE_DLQ,
    PROCESS_FAST,
    PROCESS_RICH,
    PROCESSED_FINAL,
    PROCESSED_DLQ,
    STORAGE_SAVED,
    STORAGE_DLQ,
    RAW_SITEMAP,
    DISCOVERY_DLQ,
)
DLQ_TOPICS: tuple[Topic, ...] = tuple(t for t in REGISTRY if t.is_dlq)


def topic_by_name(name: str) -> Topic:
    """Look a topic up by name; raises KeyError naming the known topics."""
    for topic in REGISTRY:
        if topic.name == name:
            return topic
    known = ", ".join(t.name for t in REGISTRY)
    raise KeyError(f"unknown topic {name!r}; known topics: {known}")


class Stage(enum.StrEnum):
    """The pipeline's stages; each value is also the stage's name in logs, metrics and DLQs."""

    INGESTOR = "ingestor"
    ROUTER = "router"
    FAST_EXTRACTOR = "fast_extractor"
    RICH_RENDERER = "rich_renderer"
    STORAGE_WRITER = "storage_writer"
    DISCOVERY = "discovery"


@dataclass(frozen=True, slots=True)
class StageTopics:
    """What a stage consumes, where it writes, where its failures go, and its consumer group."""

    input: Topic
    outputs: tuple[Topic, ...]
    dlq: Topic
    group: str
    extra_inputs: tuple[Topic, ...] = ()
    """Further topics the stage consumes in the same group (the discovery stage reads several)."""

    @property
    def inputs(self) -> tuple[Topic, ...]:
        return (self.input, *self.extra_inputs)

    @property
    def lease_group(self) -> str:
        """Shadow group whose committed offsets bound what the stage's owners have in flight."""
        return f"{self.group}.lease"

    @property
    def isolation_group(self) -> str:
        """Shadow group whose committed offsets name the record being handled in isolation."""
        return f"{self.group}.isolation"


STAGES: dict[Stage, StageTopics] = {
    Stage.INGESTOR: StageTopics(CRAWL_REQUEST, (RAW_PAGE,), RAW_PAGE_DLQ, "streamcrawl.ingestor"),
    Stage.ROUTER: StageTopics(RAW_PAGE, (PROCESS_FAST, PROCESS_RICH), RAW_PAGE_DLQ, "streamcrawl.router"),
    Stage.FAST_EXTRACTOR: StageTopics(
        PROCESS_FAST, (PROCESSED_FINAL,), PROCESSED_DLQ, "streamcrawl.fast_extractor"
    ),
    Stage.RICH_RENDERER: StageTopics(
        PROCESS_RICH, (PROCESSED_FINAL,), PROCESSED_DLQ, "streamcrawl.rich_renderer"
    ),
    Stage.STORAGE_WRITER: StageTopics(
        PROCESSED_FINAL, (STORAGE_SAVED,), STORAGE_DLQ, "streamcrawl.storage_writer"
    ),
    # The ledger's single writer of outcomes: stored pages (and their links), every stage's dead
    # letters but its own, and the robots.txt/sitemap bodies the ingestor read for it.
    Stage.DISCOVERY: StageTopics(
        STORAGE_SAVED,
        (CRAWL_REQUEST,),
        DISCOVERY_DLQ,
        "streamcrawl.discovery",
        extra_inputs=(RAW_SITEMAP, RAW_PAGE_DLQ, PROCESSED_DLQ, STORAGE_DLQ),
    ),
}
