"""`streamcrawl fsck [--repair] [--grace-s S] [--json]`: do page rows and content objects agree?

Lists every content object (``warc/``, and ``pages/``/``segments/`` of the first build) and
walks every ``pages`` row, then reports

* rows without objects — the row's object is missing or shorter than the byte range it
  points at: the page's content is lost;
* objects without rows — no row points at the object (a batch redelivered after a crash
  between its PUT and its UPSERT, or pages all recrawled since). Those younger than the
  grace period (``STREAMCRAWL_STORAGE_GC_GRACE_S``, default 1 h) are listed but never
  deleted: a writer may be about to point a row at them.

``--repair`` deletes exactly what is listed as deletable: each orphan object older than the
grace period, and each row whose object a second lookup confirms gone (the URL is stored
again by its next crawl). Nothing else. Exit status 0 when row and objects agree (or
everything found was repaired), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time

from workers.cli.base import Subparsers
from workers.cli.cmd_export import storage_unreachable
from workers.errors import ConfigError, DependencyUnavailable
from workers.settings import Settings
from workers.storage import PageStore
from workers.storage.gc import FsckReport

__all__ = ["fsck", "register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "fsck",
        help="check that page rows and content objects agree (--repair removes orphans)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--repair", action="store_true", help="delete orphan objects and rows whose content is gone"
    )
    parser.add_argument(
        "--grace-s",
        type=float,
        default=None,
        help="keep unreferenced objects younger than this (default: the setting)",
    )
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(handler=run)


async def fsck(settings: Settings, *, repair: bool, grace_s: float | None) -> FsckReport:
    async with PageStore(settings.postgres, settings.s3, settings.storage) as store:
        return await store.fsck(repair=repair, grace_s=grace_s)


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def render(report: FsckReport, *, repair: bool, grace_s: float) -> str:
    now = time.time()
    lines = [f"checked {report.rows} rows and {report.objects} content objects ({_mb(report.object_bytes)})"]
    lines.append(f"rows without objects: {len(report.missing)}")
    lines += [f"  {m.url}  ({m.key}: {m.why})" for m in report.missing]
    orphan_bytes = sum(o.size for o in report.orphans)
    lines.append(
        f"objects without rows: {len(report.orphans)} older than the {grace_s:g} s grace period"
        f" ({_mb(orphan_bytes)}), {len(report.young_orphans)} younger (kept)"
    )
    lines += [f"  {o.key}  ({o.size} bytes, {(now - o.modified) / 3600:.1f} h old)" for o in report.orphans]
    lines += [f"  {o.key}  (young: {now - o.modified:.0f} s old, kept)" for o in report.young_orphans]
    if repair:
        lines.append(
            f"repair: deleted {len(report.deleted_objects)} objects and {len(report.deleted_rows)} rows"
        )
        lines += [f"  deleted object {k}" for k in report.deleted_objects]
        lines += [f"  deleted row {h}" for h in report.deleted_rows]
    elif not report.clean:
        lines.append("run `streamcrawl fsck --repair` to delete exactly the rows and objects listed above")
    return "\n".join(lines)


def _as_json(report: FsckReport) -> dict[str, object]:
    return {
        "rows": report.rows,
        "objects": report.objects,
        "object_bytes": report.object_bytes,
        "rows_without_objects": [
            {"url_hash": m.url_hash, "url": m.url, "key": m.key, "why": m.why} for m in report.missing
        ],
        "objects_without_rows": [
            {"key": o.key, "size": o.size, "modified": o.modified} for o in report.orphans
        ],
        "young_objects_without_rows": [{"key": o.key, "size": o.size} for o in report.young_orphans],
        "deleted_objects": report.deleted_objects,
        "deleted_rows": report.deleted_rows,
    }


def run(args: argparse.Namespace, settings: Settings) -> int:
    grace = settings.storage.gc_grace_s if args.grace_s is None else args.grace_s
    if grace < 0:
        raise ConfigError("--grace-s must be 0 or more")
    try:
        report = asyncio.run(fsck(settings, repair=args.repair, grace_s=grace))
    except DependencyUnavailable as exc:
        raise storage_unreachable(exc, settings) from None
    sys.stdout.write(
        (
            json.dumps(_as_json(report), indent=2)
            if args.json
            else render(report, repair=args.repair, grace_s=grace)
        )
        + "\n"
    )
    repaired = (
        args.repair
        and len(report.deleted_objects) == len(report.orphans)
        and len(report.deleted_rows) == len(report.missing)
    )
    return 0 if report.clean or repaired else 1
