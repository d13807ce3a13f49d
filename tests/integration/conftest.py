"""Fixtures shared by the integration tests (the services themselves are in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from workers.demoweb import DemoWeb


@pytest.fixture
async def demo_web() -> AsyncIterator[DemoWeb]:
    """The offline demo web in its own process, on a free port."""
    web = DemoWeb(port=0, processes=1)
    await web.start()
    try:
        yield web
    finally:
        await web.stop()
