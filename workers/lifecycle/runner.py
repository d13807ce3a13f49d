"""Entry-point glue: parse settings once, configure logs, run a worker until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable

from workers.observability.logs import configure_logging
from workers.settings import Settings

__all__ = ["run_worker"]


def run_worker(factory: Callable[[Settings], object]) -> None:
    """``python -m workers.<stage>``: build the worker from parsed settings and run it."""
    from workers.lifecycle.worker import Worker

    settings = Settings.load()

    async def main() -> None:
        worker = factory(settings)
        assert isinstance(worker, Worker)
        configure_logging(worker.stage.value, settings.metrics.log_level)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, lambda: asyncio.ensure_future(worker.stop()))
        await worker.run()

    asyncio.run(main())
