"""``python -m workers.rich_renderer``: run the rich renderer daemon."""

from __future__ import annotations

import os

# crawl4ai reads these at import time: no cloud notice, no files outside the data dir.
os.environ.setdefault("CRAWL4AI_NO_CLOUD_NOTICE", "1")

from workers.lifecycle import run_worker
from workers.rich_renderer.daemon import RichRenderer

if __name__ == "__main__":
    run_worker(RichRenderer)
