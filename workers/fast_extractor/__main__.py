"""``python -m workers.fast_extractor``: run the fast extractor daemon."""

from __future__ import annotations

from workers.fast_extractor.daemon import FastExtractor
from workers.lifecycle import run_worker

if __name__ == "__main__":
    run_worker(FastExtractor)
