"""Types and helpers shared by the subcommand modules."""

from __future__ import annotations

import argparse
import re
from typing import TypeAlias

__all__ = ["Subparsers", "plain_help"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"

_LITERAL = re.compile(r"``(.+?)``", re.DOTALL)
_ROLE = re.compile(r":(?:func|class|mod|meth|data|attr):`~?([^`]+)`")


def plain_help(text: str | None) -> str | None:
    """A docstring as help text: ``x`` and :func:`x` (reStructuredText markup) become `x`."""
    if text is None:
        return None
    return _ROLE.sub(r"`\1`", _LITERAL.sub(r"`\1`", text))
