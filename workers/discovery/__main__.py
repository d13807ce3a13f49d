"""``python -m workers.discovery``: run the discovery daemon until SIGTERM."""

from workers.discovery.daemon import Discovery
from workers.lifecycle.runner import run_worker

if __name__ == "__main__":
    run_worker(Discovery)
