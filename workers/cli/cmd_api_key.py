"""`streamcrawl api-key create|list|revoke`: API keys for the read API (`workers.api`).

``create --name N --scope read|write [--rate R]`` prints the new key once (it is stored only
as a SHA-256 hash and cannot be shown again); ``list`` shows each key's id, name, scope,
rate and last use, never the key; ``revoke ID|NAME`` disables a key at once.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from workers.api.keys import SCOPES, ApiKey, create_key, list_keys, revoke_key
from workers.cli.base import Subparsers
from workers.ledger.follow import connect
from workers.settings import Settings
from workers.storage.migrate import apply_migrations

__all__ = ["register", "run"]


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "api-key",
        help="create, list or revoke API keys of the read API",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True, help="who or what uses the key (unique among active keys)")
    create.add_argument(
        "--scope", choices=SCOPES, required=True, help="read: GET routes; write: also POST /crawls"
    )
    create.add_argument(
        "--rate", type=int, help="requests per second allowed (default STREAMCRAWL_API_RATE_LIMIT_PER_S)"
    )
    create.add_argument("--json", action="store_true", help="print one JSON object")
    listing = actions.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--all", action="store_true", help="include revoked keys")
    listing.add_argument("--json", action="store_true", help="one JSON object per key")
    revoke = actions.add_parser("revoke", help="revoke a key by id or name")
    revoke.add_argument("key", metavar="ID|NAME")
    parser.set_defaults(handler=run)


def _line(key: ApiKey) -> str:
    used = key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "never"
    state = " revoked" if key.revoked_at else ""
    rate = f"{key.rate_per_s}/s" if key.rate_per_s else "default"
    return f"{key.key_id}  {key.scope:<5}  {rate:<8}  used {used:<16}  {key.name}{state}"


async def _run(args: argparse.Namespace, settings: Settings) -> int:
    conn = await connect(settings)
    try:
        await apply_migrations(conn)
        if args.action == "create":
            key, row = await create_key(conn, name=args.name, scope=args.scope, rate_per_s=args.rate)
            if args.json:
                sys.stdout.write(json.dumps({"key": key, **row.as_dict()}) + "\n")
            else:
                sys.stdout.write(
                    f"{key}\n"
                    f"key {row.key_id} ({row.scope}) for {row.name!r}: store it now, it cannot be shown again;"
                    " send it as `Authorization: Bearer <key>`\n"
                )
        elif args.action == "list":
            for row in await list_keys(conn, include_revoked=args.all):
                sys.stdout.write((json.dumps(row.as_dict()) if args.json else _line(row)) + "\n")
        else:
            row = await revoke_key(conn, args.key)
            sys.stdout.write(f"revoked key {row.key_id} ({row.name})\n")
    finally:
        await conn.close()
    return 0


def run(args: argparse.Namespace, settings: Settings) -> int:
    return asyncio.run(_run(args, settings))
