"""``python -m workers.storage_writer``: run the storage writer daemon."""

from __future__ import annotations

from workers.lifecycle import run_worker
from workers.storage_writer.daemon import StorageWriter

if __name__ == "__main__":
    run_worker(StorageWriter)
