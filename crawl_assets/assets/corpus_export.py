"""``corpus_export``: a frontier partition's stored pages as one Parquet file in S3.

Partitioned like the frontier (one partition = one crawl batch); it reads the same rows and
columns as ``streamcrawl export --format parquet --batch <partition>`` (one code path:
workers/storage/export.py and parquet.py) and writes them to
``s3://<bucket>/exports/corpus/<partition>.parquet`` (``…-dedup.parquet`` with ``dedup``).
Each materialisation records the row count, the file size, where it is, the detected
languages, how many rows are flagged as duplicates, and a preview of the first rows.
"""

# No `from __future__ import annotations` here: Dagster reads the Config and resource
# annotations of decorated functions at definition time and cannot resolve strings.
import contextlib
import tempfile
from collections import Counter
from pathlib import Path

from dagster import (
    AssetExecutionContext,
    AssetsDefinition,
    Config,
    MaterializeResult,
    MetadataValue,
    PartitionsDefinition,
    asset,
)
from pydantic import Field

from crawl_assets.aio import run_sync
from crawl_assets.resources import PostgresResource, S3Resource
from crawl_assets.stages import STORED_PAGES
from workers.settings import StorageSettings
from workers.storage import CorpusRow, PageStore
from workers.storage.parquet import write_parquet

__all__ = ["CORPUS_EXPORT_PREFIX", "CorpusExportConfig", "build_corpus_export", "export_key"]

CORPUS_EXPORT_PREFIX = "exports/corpus/"
_PREVIEW_ROWS = 5


class CorpusExportConfig(Config):
    dedup: bool = Field(default=False, description="Leave out pages flagged as exact or near duplicates.")


def export_key(partition: str, *, dedup: bool) -> str:
    return f"{CORPUS_EXPORT_PREFIX}{partition}{'-dedup' if dedup else ''}.parquet"


class _Summary:
    def __init__(self) -> None:
        self.languages: Counter[str] = Counter()
        self.duplicates = 0
        self.preview: list[CorpusRow] = []

    def __call__(self, row: CorpusRow) -> None:
        self.languages[row.language or "unknown"] += 1
        self.duplicates += row.duplicate_of is not None
        if len(self.preview) < _PREVIEW_ROWS:
            self.preview.append(row)

    def preview_table(self) -> str:
        def cell(value: object, width: int) -> str:
            text = " ".join(str(value or "").split()).replace("|", "\\|")
            return text if len(text) <= width else text[: width - 1] + "…"

        lines = ["| url | title | language | text |", "|---|---|---|---|"]
        for r in self.preview:
            lines.append(
                f"| {cell(r.url, 60)} | {cell(r.title, 50)} | {cell(r.language, 8)} | {cell(r.text('text'), 100)} |"
            )
        return "\n".join(lines)


def build_corpus_export(partitions: PartitionsDefinition) -> AssetsDefinition:
    @asset(
        key="corpus_export",
        partitions_def=partitions,
        deps=[STORED_PAGES],
        group_name="corpus",
        kinds={"parquet", "s3"},
        description="The partition's stored pages as Parquet in S3 (exports/corpus/<partition>.parquet): "
        "Common Crawl's columnar-index columns plus title, text, markdown, language_score, simhash, "
        "duplicate_of, route and score.",
    )
    def corpus_export(
        context: AssetExecutionContext,
        config: CorpusExportConfig,
        postgres: PostgresResource,
        s3: S3Resource,
    ) -> MaterializeResult[None]:
        batch = context.partition_key
        key = export_key(batch, dedup=config.dedup)
        summary = _Summary()
        with tempfile.TemporaryDirectory(prefix="corpus-export-") as tmp:
            path = Path(tmp) / "corpus.parquet"

            async def build() -> int:
                async with PageStore(postgres.settings(), s3.settings(), StorageSettings()) as store:
                    rows = store.iter_corpus(batch=batch, dedup=config.dedup)
                    async with contextlib.aclosing(rows):  # a failed write still ends the cursor
                        return await write_parquet(rows, path, on_row=summary)

            count = run_sync(build())
            size = path.stat().st_size
            bucket = s3.ensure_bucket()
            s3.client().fput_object(bucket, key, str(path), content_type="application/vnd.apache.parquet")
        context.log.info(
            "exported %d pages of batch %s to s3://%s/%s (%d bytes)", count, batch, bucket, key, size
        )
        return MaterializeResult(
            metadata={
                "batch": batch,
                "row_count": count,
                "bytes": size,
                "path": MetadataValue.path(f"s3://{bucket}/{key}"),
                "dedup": config.dedup,
                "duplicates_flagged": summary.duplicates,
                "languages": ", ".join(f"{lang} {n}" for lang, n in summary.languages.most_common(8))
                or "none",
                "preview": MetadataValue.md(summary.preview_table()),
            }
        )

    return corpus_export
