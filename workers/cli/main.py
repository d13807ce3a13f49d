"""`streamcrawl`: a dispatcher over one module per subcommand.

To add a subcommand, write ``workers/cli/cmd_<name>.py`` with::

    def register(subparsers: Subparsers) -> None:
        parser = subparsers.add_parser("<name>", help="...")
        parser.set_defaults(handler=run)

    def run(args: argparse.Namespace, settings: Settings) -> int: ...

and add ``"<name>"`` to ``COMMANDS`` below. Settings are parsed once here and passed in.
Any ``StreamCrawlError`` becomes one line on stderr (what to fix) and exit status 1; no
traceback. Output piped into a reader that stops early (``| head``) ends quietly with status
141 (128 + SIGPIPE, what a shell reports for a tool the pipe stopped). Libraries' log lines
(aiokafka's "Unable connect to node…") are silenced: the error says it once, in one line;
``--verbose`` shows them. Help texts are plain text: docstring markup (````x````,
``:func:`x```) is shown as `x`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from aiokafka.errors import KafkaError
from pydantic import ValidationError
from pydantic_settings import BaseSettings

from workers import settings as settings_module
from workers.cli.base import plain_help
from workers.errors import ConfigError, StreamCrawlError
from workers.settings import Settings

__all__ = ["COMMANDS", "EXIT_PIPE", "build_parser", "main"]

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
EXIT_PIPE = 141
"""Exit status when stdout's reader went away (``| head``)."""
_QUIET_LOGGERS = ("aiokafka", "kafka")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="streamcrawl",
        description="StreamCrawl: throughput-first web crawling (embedded stack and pipeline control).",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show the libraries' log lines (Kafka client, …)"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"workers.cli.cmd_{name}")
        module.register(subparsers)
    _plain(parser)
    return parser


def _plain(parser: argparse.ArgumentParser) -> None:
    """Docstring markup out of every description and option help, subcommands included."""
    parser.description = plain_help(parser.description)
    for action in parser._actions:  # argparse offers no public iterator over its actions
        action.help = plain_help(action.help) if isinstance(action.help, str) else action.help
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                _plain(sub)
            for choice in action._choices_actions:
                choice.help = plain_help(choice.help) if isinstance(choice.help, str) else choice.help


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


def _quiet_libraries(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
        return
    for name in _QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)


def _stdout_gone() -> int:
    """stdout's reader left: point stdout at /dev/null so the interpreter's final flush is quiet."""
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return EXIT_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _run(argv)
    except BrokenPipeError:
        return _stdout_gone()


def _run(argv: Sequence[str] | None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries(args.verbose)
    try:
        code = int(args.handler(args, load_settings()))
        sys.stdout.flush()
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
