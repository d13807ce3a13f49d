"""The read API: search the corpus, read pages, follow batches, submit crawls (FastAPI).

``python -m workers.api`` serves it with uvicorn on ``STREAMCRAWL_API_BIND_HOST`` (127.0.0.1)
and ``STREAMCRAWL_API_PORT``; ``streamcrawl up`` runs it under supervisord.
``python -m workers.api --openapi docs/openapi.json`` writes the schema that is committed.

Modules: ``app`` (the application and its lifespan), ``routes/`` (one module per resource),
``search`` (the ``GET /pages`` query), ``pages`` (metadata), ``content`` (every content read),
``dead_letters`` (DLQ reads), ``keys`` / ``auth`` / ``ratelimit`` (access control),
``errors`` (the JSON error shape), ``middleware`` (metrics, access log, body cap).
"""

from __future__ import annotations

from workers.api.app import create_app

__all__ = ["create_app"]
