"""``python -m workers.ingestor``: run the ingestor daemon."""

from __future__ import annotations

from workers.ingestor.daemon import Ingestor
from workers.lifecycle import run_worker

if __name__ == "__main__":
    run_worker(Ingestor)
