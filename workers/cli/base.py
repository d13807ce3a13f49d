"""Types shared by the subcommand modules."""

from __future__ import annotations

import argparse
from typing import TypeAlias

__all__ = ["Subparsers"]

Subparsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
