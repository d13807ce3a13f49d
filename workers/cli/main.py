"""`streamcrawl`: a dispatcher over one module per subcommand.

To add a subcommand, write ``workers/cli/cmd_<name>.py`` with::

    def register(subparsers: Subparsers) -> None:
        parser = subparsers.add_parser("<name>", help="...")
        parser.set_defaults(handler=run)

    def run(args: argparse.Namespace, settings: Settings) -> int: ...

and add ``"<name>"`` to ``COMMANDS`` below. Settings are parsed once here and passed in.
Any ``StreamCrawlError`` becomes one line on stderr (what to fix) and exit status 1; no
traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from workers import settings as settings_module
from workers.errors import ConfigError, StreamCrawlError
from workers.settings import Settings

__all__ = ["COMMANDS", "build_parser", "main"]

COMMANDS: tuple[str, ...] = (
    "up",
    "down",
    "status",
    "crawl",
    "demo",
    "export",
    "fsck",
    "dlq",
    "provision",
    "api_key",
)
"""Subcommand names; each lives in ``workers.cli.cmd_<name>`` (``api_key`` registers ``api-key``)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamcrawl",
        description="StreamCrawl: throughput-first web crawling (embedded stack and pipeline control).",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"workers.cli.cmd_{name}")
        module.register(subparsers)
    return parser


def _settings_error(exc: ValidationError) -> ConfigError:
    """One line naming each offending environment variable."""
    group = getattr(settings_module, exc.title, None)
    prefix = ""
    if isinstance(group, type) and issubclass(group, BaseSettings):
        prefix = str(group.model_config.get("env_prefix", ""))
    problems = []
    for err in exc.errors():
        loc = "_".join(str(part) for part in err.get("loc", ()))
        name = f"{prefix}{loc}".upper() if loc else exc.title
        problems.append(f"{name}: {err.get('msg', 'invalid value')}")
    return ConfigError("invalid settings: " + "; ".join(problems))


def load_settings() -> Settings:
    try:
        return Settings.load()
    except ValidationError as exc:
        raise _settings_error(exc) from None


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code = int(args.handler(args, load_settings()))
    except StreamCrawlError as exc:
        message = " ".join(str(exc).split())
        sys.stderr.write(f"streamcrawl {args.command}: error: {message}\n")
        return 1
    except KafkaError as exc:
        servers = settings_module.KafkaSettings().bootstrap_servers
        sys.stderr.write(
            f"streamcrawl {args.command}: error: Kafka at {servers} did not answer ({exc}); "
            "start the stack with `streamcrawl up`, or set STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS\n"
        )
        return 1
    except KeyboardInterrupt:
        sys.stderr.write(f"streamcrawl {args.command}: interrupted\n")
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
