"""``crawl_frontier``: rank-range partitions published to ``crawl.request`` as crawl batches."""

# No `from __future__ import annotations` here: Dagster reads the Config and resource
# annotations of decorated functions at definition time and cannot resolve strings.
import warnings

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetObservation,
    AssetsDefinition,
    BackfillPolicy,
    Config,
    LastPartitionMapping,
    MaterializeResult,
    PartitionsDefinition,
    asset,
)
from dagster_shared.utils.warnings import BetaWarning
from pydantic import Field

from crawl_assets.aio import run_sync
from crawl_assets.frontier import BatchResult, latest_list_id, publish_partitions
from crawl_assets.resources import KafkaResource, PostgresResource, S3Resource
from crawl_assets.stages import FRONTIER_KEY
from workers.settings import StorageSettings
from workers.storage import PageStore

__all__ = ["FrontierConfig", "build_crawl_frontier"]


class FrontierConfig(Config):
    list_id: str | None = Field(
        default=None,
        description="Tranco snapshot (tranco_list partition) to read; empty = the latest loaded.",
    )
    url_template: str = Field(
        default="https://{domain}/",
        description="How a domain becomes a URL; the demo web uses e.g. `http://{domain}:8080/`.",
    )
    recrawl: bool = Field(default=False, description="Publish URLs that are already stored, too.")


def build_crawl_frontier(partitions: PartitionsDefinition) -> AssetsDefinition:
    """The frontier asset over ``partitions`` (rank ranges, see crawl_assets/partitions.py)."""

    # BackfillPolicy is a beta parameter; it is what makes a UI or CLI backfill one run.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BetaWarning)

        @asset(
            key=FRONTIER_KEY,
            partitions_def=partitions,
            # One run per backfill, however many ranges: a run costs 7-25 s to start here, and the
            # asset publishes each partition as its own batch anyway.
            backfill_policy=BackfillPolicy.single_run(),
            deps=[AssetDep("tranco_list", partition_mapping=LastPartitionMapping()), "kafka_topics"],
            group_name="crawl",
            kinds={"kafka", "postgres"},
            description="Publishes the URLs of a rank range to crawl.request as one crawl batch "
            "(batch = partition key). Already stored URLs are skipped unless `recrawl`.",
        )
        def crawl_frontier(
            context: AssetExecutionContext,
            config: FrontierConfig,
            kafka: KafkaResource,
            postgres: PostgresResource,
            s3: S3Resource,
        ) -> MaterializeResult[None]:
            keys = context.partition_keys

            async def publish() -> tuple[str, list[BatchResult]]:
                async with postgres.connect() as conn:
                    list_id = config.list_id or await latest_list_id(conn)
                    async with PageStore(postgres.settings(), s3.settings(), StorageSettings()) as store:
                        results = await publish_partitions(
                            conn,
                            kafka.settings(),
                            keys=keys,
                            list_id=list_id,
                            url_template=config.url_template,
                            recrawl=config.recrawl,
                            stored_hashes=store.stored_hashes,
                            run_id=context.run_id,
                        )
                return list_id, results

            list_id, results = run_sync(publish())
            for r in results:
                context.log_event(
                    AssetObservation(
                        asset_key=FRONTIER_KEY,
                        partition=r.batch,
                        metadata={
                            "in_list": r.in_list,
                            "published": r.published,
                            "skipped_stored": r.skipped_stored,
                        },
                    )
                )
            context.log.info(
                "published %d URLs in %d batches", sum(r.published for r in results), len(results)
            )
            return MaterializeResult(
                metadata={
                    "list_id": list_id,
                    "partitions": len(results),
                    "published": sum(r.published for r in results),
                    "skipped_stored": sum(r.skipped_stored for r in results),
                    "in_list": sum(r.in_list for r in results),
                    "url_template": config.url_template,
                    "recrawl": config.recrawl,
                }
            )

    return crawl_frontier
