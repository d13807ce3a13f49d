"""Entry point: ``python -m workers.demoweb [serve|urls|tranco] ...`` (see workers/demoweb/cli.py)."""

from __future__ import annotations

import sys

from workers.demoweb.cli import main

if __name__ == "__main__":
    sys.exit(main())
