"""The FastAPI application: one per process, built from the parsed settings.

The lifespan opens the storage layer's :class:`~workers.storage.PageStore` (its one asyncpg
pool, sized by ``STREAMCRAWL_API_POOL_SIZE``, and its S3 client; pending migrations applied)
and closes it on shutdown. Every route but ``/healthz`` and ``/readyz`` needs an API key;
the OpenAPI schema (``/openapi.json``, ``/docs``) is public, like the committed
docs/openapi.json.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI

from workers.api.context import ApiContext
from workers.api.errors import install_error_handlers
from workers.api.middleware import RequestMiddleware
from workers.api.ratelimit import KeyRateLimiter
from workers.api.routes import batches, crawls, dead_letters, health, pages
from workers.settings import Settings
from workers.storage import PageStore

__all__ = ["DESCRIPTION", "create_app"]

DESCRIPTION = """\
Read StreamCrawl's corpus and drive its crawls: full-text search over stored pages, each
page's metadata and content (Markdown, plain text, HTML as fetched, rendered DOM, WARC),
batch progress (the same model as `streamcrawl crawl --wait`), crawl submission with the
options of `streamcrawl crawl`, and the dead letters with their reasons.

Every route but `/healthz` and `/readyz` needs an API key (`streamcrawl api-key create
--name N --scope read|write`) sent as `Authorization: Bearer sck_…`; `POST /crawls` needs
a `write` key. Errors are JSON: `{"error": {"status", "code", "message", "details"}}`, the
message saying what to change.
"""


def _version() -> str:
    try:
        return version("streamcrawl")
    except PackageNotFoundError:
        return "0"


def create_app(settings: Settings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        pg = settings.postgres.model_copy(update={"pool_size": settings.api.pool_size})
        store = PageStore(pg, settings.s3, settings.storage)
        await store.start()
        ctx = ApiContext(settings, store, KeyRateLimiter(default_per_s=settings.api.rate_limit_per_s))
        try:
            ctx.start_background()
            app.state.ctx = ctx
            yield
        finally:
            try:
                await ctx.close()
            finally:
                await store.close()

    app = FastAPI(
        title="StreamCrawl API",
        version=_version(),
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "pages", "description": "Search the corpus; read a page's metadata and content."},
            {"name": "batches", "description": "Follow crawl batches."},
            {"name": "crawls", "description": "Submit crawls (write keys)."},
            {"name": "dead letters", "description": "What failed and why."},
            {"name": "operations", "description": "Health, readiness, metrics."},
        ],
    )
    install_error_handlers(app)
    app.add_middleware(RequestMiddleware)
    for module in (pages, batches, crawls, dead_letters, health):
        app.include_router(module.router(settings))
    return app
