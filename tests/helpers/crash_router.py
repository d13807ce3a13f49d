"""A router whose process dies on one kind of record: the test double of a poison record.

``python -m tests.helpers.crash_router`` runs the real router, except that a record whose
URL contains ``crash-me`` ends the process on the spot (``os._exit``: no drain, no commit,
no exception the lifecycle could catch) — what a segfault in a parser or the OOM killer
does. It exists only under tests/.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from workers.lifecycle import Incoming, run_worker
from workers.messages import peek
from workers.router.daemon import Router

__all__ = ["CrashRouter"]

CRASH_MARK = "crash-me"


class CrashRouter(Router):
    async def handle_batch(self, batch: Sequence[Incoming]) -> None:
        for item in batch:
            if CRASH_MARK in str(peek(item.record.value).get("url", "")):
                os._exit(70)
        await super().handle_batch(batch)


if __name__ == "__main__":
    run_worker(CrashRouter)
