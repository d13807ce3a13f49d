"""The API's request and response models (they are the OpenAPI schema: docs/openapi.json)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from workers.scope import SCOPE_MODES

__all__ = [
    "URL_HASH_PATTERN",
    "BatchList",
    "BatchOut",
    "ContentFormat",
    "CrawlIn",
    "CrawlOut",
    "DeadLetterList",
    "DeadLetterOut",
    "Health",
    "PageHit",
    "PageList",
    "PageOut",
    "RejectedLine",
]

URL_HASH_PATTERN = r"^[0-9a-f]{32}$"
ContentFormat = Literal["markdown", "text", "html", "rendered", "warc"]
ScopeMode = Literal["host", "domain", "any"]
assert set(SCOPE_MODES) == {"host", "domain", "any"}


class PageHit(BaseModel):
    """One search result."""

    url_hash: str
    url: str
    title: str | None
    host: str
    route: str = Field(description="fast (static extraction) or rich (rendered in a browser).")
    language: str | None = Field(description="Detected language, else the primary subtag of <html lang>.")
    fetched_at: datetime
    snippet: str = Field(
        description="With q: text around the matches, matches in <b>…</b>; without: the start of the text or description."
    )
    rank: float | None = Field(description="Relevance (with q, order=relevance); higher is better.")


class PageList(BaseModel):
    items: list[PageHit]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")
    limit: int
    ranked: int | None = Field(
        default=None,
        description="Relevance order only: how many matching pages were ranked, the most recently fetched"
        " first (at most STREAMCRAWL_API_RANK_WINDOW). When it equals that window, older matches were left"
        " out: narrow the query, or page through every match with order=recent.",
    )


class PageOut(BaseModel):
    """A stored page's metadata (content: `GET /pages/{url_hash}/content?format=…`)."""

    url_hash: str
    url: str
    final_url: str
    host: str
    status: int
    route: str
    score: int
    title: str | None
    description: str | None
    lang: str | None = Field(description="The page's declared language (<html lang>).")
    language: str | None = Field(description="The detected language, when the extractor detected one.")
    canonical_url: str | None
    published_time: str | None
    word_count: int
    content_hash: str
    text_hash: str
    simhash: str = Field(description="64-bit SimHash of the text, 16 hex digits.")
    outlink_count: int
    outlinks: list[str] | None = Field(description="Only with `outlinks=true`.")
    truncated: bool
    fallback: bool
    fetched_at: datetime
    processed_at: datetime
    first_stored_at: datetime
    updated_at: datetime
    batches: list[str] = Field(description="Batches that requested this URL, newest first (at most 50).")
    formats: dict[str, bool] = Field(description="Which `format`s of the content route this page has.")


class BatchOut(BaseModel):
    """A batch's progress: the same summary `streamcrawl crawl --wait --json` prints, plus an ETA."""

    model_config = ConfigDict(extra="allow")

    batch: str
    status: str = Field(description="publishing, published or complete.")
    origin: str = Field(description="cli, dagster, api or demo.")
    created_at: datetime | None
    requested: int
    listed: int
    discovered: int
    fetched: int
    stored: int
    unchanged: int
    skipped: int
    dead_lettered: int
    in_flight: int
    fast: int
    rich: int
    skipped_by_reason: dict[str, int]
    dead_by_reason: dict[str, int]
    dropped_by_reason: dict[str, int]
    sitemaps_read: int
    pages_per_s: float
    duration_s: float | None
    eta_s: float | None = Field(
        description="in_flight / pages_per_s while running; 0 when complete; null before the first page."
    )


class BatchList(BaseModel):
    items: list[BatchOut]
    next_cursor: str | None
    limit: int


class CrawlIn(BaseModel):
    """A crawl to submit: the options of `streamcrawl crawl`, validated the same way."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    urls: list[str] = Field(
        default_factory=list,
        max_length=10_000,
        description="URLs or bare domains; each must be valid (422 names the first that is not).",
    )
    list_text: str | None = Field(
        default=None,
        alias="list",
        max_length=2_000_000,
        description="The text of a list file: a Tranco CSV (rank,domain) or one URL/domain per line;"
        " invalid lines are skipped and reported in `rejected`.",
    )
    batch: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$",
        description="Batch id (default: a new api-… id); an existing id is a 409.",
    )
    scheme: Literal["https", "http"] = Field(default="https", description="Scheme for bare domains.")
    depth: int = Field(default=0, ge=0, le=100, description="Link hops to follow from the listed URLs.")
    scope: ScopeMode = Field(default="host", description="Which links to follow.")
    max_pages_per_host: int | None = Field(default=None, ge=1, le=100_000_000)
    max_pages: int | None = Field(default=None, ge=1, le=1_000_000_000)
    include: list[str] = Field(
        default_factory=list, max_length=50, description="Follow only URLs matching one of these regexes."
    )
    exclude: list[str] = Field(
        default_factory=list, max_length=50, description="Never follow URLs matching one of these regexes."
    )
    follow_nofollow: bool = False
    sitemaps: bool = Field(
        default=False, description="Also seed from robots.txt Sitemap: lines and /sitemap.xml."
    )
    recrawl: bool = Field(default=False, description="Fetch stored URLs again, conditionally.")


class RejectedLine(BaseModel):
    line: int
    text: str
    reason: str


class CrawlOut(BaseModel):
    batch: str
    listed: int
    published: int
    already_stored: int
    refused: dict[str, int] = Field(description="Listed URLs not requested, by reason (budgets).")
    rejected: list[RejectedLine] = Field(description="Invalid lines of `list` (at most 100 shown).")
    rejected_count: int
    progress: str = Field(description="Where to follow the batch: GET this path.")


class DeadLetterOut(BaseModel):
    dlq: str
    partition: int
    offset: int
    stage: str
    error_class: str
    error: str
    attempt: int
    url: str | None
    url_hash: str | None
    batch: str | None
    source: str = Field(description="topic[partition]@offset of the record that failed.")
    first_failure_at: datetime
    last_failure_at: datetime


class DeadLetterList(BaseModel):
    items: list[DeadLetterOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` to read on; null once every dead-letter topic was read to its end."
        " A page may hold fewer than `limit` items (each reads at most STREAMCRAWL_API_DEAD_LETTER_SCAN records)."
    )
    limit: int
    scanned: int = Field(description="Dead-letter records read for this page.")


class Health(BaseModel):
    status: Literal["ok", "unavailable"]
    checks: dict[str, str] = Field(default_factory=dict)
    detail: dict[str, Any] = Field(default_factory=dict)
