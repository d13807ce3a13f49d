"""``tranco_list``: one dynamic partition per Tranco snapshot, stored in PostgreSQL."""

# No `from __future__ import annotations` here: Dagster reads the Config and resource
# annotations of decorated functions at definition time and cannot resolve strings.

import io
import time
from pathlib import Path

import zstandard
from dagster import AssetExecutionContext, Config, MaterializeResult, MetadataValue, asset
from pydantic import Field

from crawl_assets.aio import run_sync
from crawl_assets.partitions import TRANCO_PARTITIONS
from crawl_assets.resources import PostgresResource, S3Resource
from crawl_assets.tranco import download_tranco, read_tranco_file, store_snapshot
from workers.lists import ParsedList

__all__ = ["TrancoListConfig", "snapshot_object_key", "tranco_list"]

_PREVIEW_ROWS = 10
_REJECTED_SHOWN = 50


class TrancoListConfig(Config):
    path: str | None = Field(
        default=None,
        description="Local Tranco list (`rank,domain` CSV, gzipped or Tranco's ZIP). Empty: download the list named by "
        "the partition key (a Tranco list id or a YYYY-MM-DD date) with the `tranco` package (needs internet).",
    )


def snapshot_object_key(list_id: str) -> str:
    """Where the normalised snapshot is archived in the bucket."""
    return f"tranco/{list_id}.csv.zst"


def _preview(parsed: ParsedList) -> str:
    lines = ["| rank | domain |", "|---:|---|"]
    lines += [f"| {rank} | {domain} |" for rank, domain in parsed.ranked[:_PREVIEW_ROWS]]
    return "\n".join(lines)


def _rejected_preview(parsed: ParsedList) -> str:
    if not parsed.rejected:
        return "none"
    shown = [f"- line {n}: `{line[:80]}` — {why}" for n, line, why in parsed.rejected[:_REJECTED_SHOWN]]
    if len(parsed.rejected) > _REJECTED_SHOWN:
        shown.append(f"- … {len(parsed.rejected) - _REJECTED_SHOWN} more")
    return "\n".join(shown)


@asset(
    partitions_def=TRANCO_PARTITIONS,
    group_name="lists",
    kinds={"postgres", "s3"},
    description="A Tranco top-sites snapshot: validated, normalised domains by rank in PostgreSQL "
    "(`tranco_lists`), archived in S3. Add a partition named after the list id or the file's date.",
)
def tranco_list(
    context: AssetExecutionContext, config: TrancoListConfig, postgres: PostgresResource, s3: S3Resource
) -> MaterializeResult[None]:
    list_id = context.partition_key
    started = time.perf_counter()
    if config.path:
        path = Path(config.path).expanduser()
        parsed, source = read_tranco_file(path), str(path)
    else:
        parsed, source = download_tranco(list_id), f"tranco package, list {list_id}"
    parsed_s = time.perf_counter() - started

    async def store() -> None:
        async with postgres.connect() as conn:
            await store_snapshot(conn, list_id=list_id, source=source, parsed=parsed)

    run_sync(store())
    rows = parsed.ranked
    body = zstandard.ZstdCompressor(level=3).compress(
        "".join(f"{rank},{domain}\n" for rank, domain in rows).encode()
    )
    bucket = s3.ensure_bucket()
    key = snapshot_object_key(list_id)
    s3.client().put_object(bucket, key, io.BytesIO(body), len(body), content_type="application/zstd")
    elapsed = time.perf_counter() - started
    context.log.info(
        "tranco list %s: %d rows, %d rejected, %.2f s",
        list_id,
        len(rows),
        len(parsed.rejected),
        elapsed,
    )
    return MaterializeResult(
        metadata={
            "row_count": len(rows),
            "rejected_count": len(parsed.rejected),
            "max_rank": max((r for r, _ in rows), default=0),
            "top_ranks": MetadataValue.md(_preview(parsed)),
            "rejected_examples": MetadataValue.md(_rejected_preview(parsed)),
            "ignored_columns": ", ".join(parsed.ignored_columns) or "none",
            "source": source,
            "archive": MetadataValue.path(f"s3://{bucket}/{key}"),
            "parse_seconds": round(parsed_s, 3),
            "load_seconds": round(elapsed, 3),
        }
    )
