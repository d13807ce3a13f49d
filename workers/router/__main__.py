"""``python -m workers.router``: run the router daemon."""

from __future__ import annotations

from workers.lifecycle import run_worker
from workers.router.daemon import Router

if __name__ == "__main__":
    run_worker(Router)
