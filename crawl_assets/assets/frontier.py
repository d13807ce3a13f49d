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
from crawl_assets.resources import KafkaResource, PostgresResource
from crawl_assets.stages import FRONTIER_KEY
from workers.messages import Scope
from workers.scope import validate_scope

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
    recrawl: bool = Field(
        default=False,
        description="Fetch URLs that are already stored again (conditionally: If-None-Match / "
        "If-Modified-Since); without it they are skipped and counted as already_stored.",
    )
    depth: int = Field(
        default=0,
        ge=0,
        description="Link hops the discovery stage follows from each listed URL; 0 = only the listed "
        "URLs (a top-sites list's home pages).",
    )
    scope: str = Field(
        default="host",
        description="Which links are followed: `host` (the listed URL's host, or where it redirected), "
        "`domain` (its registered domain, Public Suffix List) or `any`.",
    )
    max_pages_per_host: int | None = Field(
        default=None, ge=1, description="URLs one host may contribute to the batch; empty = no limit."
    )
    max_pages: int | None = Field(
        default=None, ge=1, description="URLs the whole batch (each partition) may request; empty = no limit."
    )
    include: list[str] = Field(
        default_factory=list,
        description="Regular expressions; when given, a discovered URL must match one to be followed.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Regular expressions; a discovered URL matching one is not followed.",
    )
    follow_nofollow: bool = Field(default=False, description="Follow rel=nofollow links too.")
    sitemaps: bool = Field(
        default=False,
        description="Also seed each batch from its hosts' robots.txt `Sitemap:` lines and /sitemap.xml.",
    )

    def to_scope(self) -> Scope:
        return validate_scope(
            Scope(
                mode=self.scope,
                max_depth=self.depth,
                max_pages_per_host=self.max_pages_per_host,
                max_pages=self.max_pages,
                include=list(self.include),
                exclude=list(self.exclude),
                follow_nofollow=self.follow_nofollow,
            )
        )


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
            description="Publishes the URLs of a rank range as one crawl batch (`<partition>@<run>`) with "
            "its scope: depth 0 fetches the listed URLs, depth N follows links within `scope` under the "
            "budgets. Already stored URLs are skipped unless `recrawl`.",
        )
        def crawl_frontier(
            context: AssetExecutionContext,
            config: FrontierConfig,
            kafka: KafkaResource,
            postgres: PostgresResource,
        ) -> MaterializeResult[None]:
            keys = context.partition_keys
            scope = config.to_scope()

            async def publish() -> tuple[str, list[BatchResult]]:
                async with postgres.connect() as conn:
                    list_id = config.list_id or await latest_list_id(conn)
                    results = await publish_partitions(
                        conn,
                        kafka.settings(),
                        keys=keys,
                        list_id=list_id,
                        url_template=config.url_template,
                        scope=scope,
                        recrawl=config.recrawl,
                        sitemaps=config.sitemaps,
                        run_id=context.run_id,
                    )
                return list_id, results

            list_id, results = run_sync(publish())
            for r in results:
                context.log_event(
                    AssetObservation(
                        asset_key=FRONTIER_KEY,
                        partition=r.partition,
                        metadata={
                            "batch": r.batch,
                            "in_list": r.in_list,
                            "published": r.published,
                            "skipped_stored": r.skipped_stored,
                            "invalid": r.invalid,
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
                    "scope": f"{scope.mode}, depth {scope.max_depth}",
                    "batches": ", ".join(r.batch for r in results),
                }
            )

    return crawl_frontier
