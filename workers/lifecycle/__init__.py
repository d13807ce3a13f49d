"""The shared worker lifecycle: consume, handle, produce, commit after acknowledgement."""

from __future__ import annotations

from workers.lifecycle.runner import run_worker
from workers.lifecycle.worker import Incoming, Worker

__all__ = ["Incoming", "Worker", "run_worker"]
