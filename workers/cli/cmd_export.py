"""`streamcrawl export [-o FILE] [--batch B]`: stored pages as JSON Lines.

One object per page: url, final_url, title, description, lang, route, score, markdown,
fetched_at (ISO 8601). Markdown is read from the object store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import TextIO

from workers.cli.base import Subparsers
from workers.errors import ConfigError
from workers.settings import Settings
from workers.storage import PageStore

__all__ = ["export", "register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser("export", help="write stored pages as JSON Lines", description=__doc__)
    parser.add_argument("-o", "--output", help="output file (default: stdout)")
    parser.add_argument("--batch", help="only pages of this crawl batch")
    parser.set_defaults(handler=run)


async def export(settings: Settings, out: TextIO, *, batch: str | None = None) -> int:
    count = 0
    async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
        async for page in store.iter_pages(batch=batch):
            out.write(json.dumps(page.as_dict(), ensure_ascii=False, default=str) + "\n")
            count += 1
    return count


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.output:
        path = Path(args.output)
        if not path.parent.is_dir():
            raise ConfigError(f"cannot write {path}: directory {path.parent} does not exist")
        with path.open("w", encoding="utf-8") as handle:
            count = asyncio.run(export(settings, handle, batch=args.batch))
        sys.stderr.write(f"exported {count} pages to {path}\n")
    else:
        count = asyncio.run(export(settings, sys.stdout, batch=args.batch))
        sys.stderr.write(f"exported {count} pages\n")
    return 0
