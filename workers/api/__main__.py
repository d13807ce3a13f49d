"""``python -m workers.api [--openapi FILE]``: serve the API, or write its OpenAPI schema."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import uvicorn

from workers.api.app import create_app
from workers.lifecycle.runner import die_with_parent
from workers.observability.logs import configure_logging
from workers.settings import ApiSettings, Settings

__all__ = ["main", "openapi_text"]


def openapi_text(settings: Settings | None = None) -> str:
    """The schema as committed in docs/openapi.json (stable key order, trailing newline).

    Without ``settings``: the defaults (page size and query caps appear in the schema), not
    whatever STREAMCRAWL_API_* variables this process happens to see.
    """
    if settings is None:
        settings = Settings(api=ApiSettings.model_construct())
    return json.dumps(create_app(settings).openapi(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workers.api", description=__doc__)
    parser.add_argument("--openapi", type=Path, help="write the OpenAPI schema to this file and exit")
    args = parser.parse_args(argv)
    if args.openapi is not None:
        args.openapi.write_text(openapi_text())
        return 0
    die_with_parent()  # a supervisord killed with -9 leaves no API behind holding its port
    settings = Settings.load()
    configure_logging("api", settings.metrics.log_level)
    uvicorn.run(
        create_app(settings),
        host=settings.api.bind_host,
        port=settings.api.port,
        log_config=None,
        access_log=False,  # the app logs one line per request, without query strings or keys
        server_header=False,
        timeout_graceful_shutdown=int(settings.worker.drain_timeout_s),
        lifespan="on",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
