"""Load never changes the outcome: the same crawl on an idle and on a CPU-starved machine.

The ingestor daemon runs as a subprocess twice over the same 2,000 URLs of 100 hosts —
once as it is, once pinned to one core (``taskset -c 0``) beside six CPU hogs pinned to
that core — with short timeouts (2 s connect and read, 3 s total) that our own saturation
easily exceeds: the ingestor of the first build dead-lettered ~70 of them here (connect
timeouts, then open breakers) while its idle run was clean. Both
runs must fetch exactly the same URLs, dead-letter none, and the web server (its own
process, not starved) must count exactly one GET per page that succeeds first time (two
for the pages that fail once on purpose: the failure is re-queued, not retried at once).
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.kafka import read_all
from workers.kafka import make_producer
from workers.lag import high_watermarks
from workers.messages import CrawlRequest, DeadLetter, RawPage, decode, encode, make_headers
from workers.settings import Settings
from workers.stack.environment import settings_env
from workers.topics import CRAWL_REQUEST, RAW_PAGE, RAW_PAGE_DLQ, Topic
from workers.urls import url_hash

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOSTS = 100
PER_HOST = 20
HOGS = 6
PAGE = b"<!doctype html><html><head><title>load</title></head><body>" + b"<p>words and more words</p>" * 800


def _serve(port_out: Any, ready: Any) -> None:
    """The web: /p/N pages, /slow/N after 0.3 s, /flaky/N a 503 on the first GET; /__counts."""
    from aiohttp import web

    counts: dict[str, int] = {}

    async def handle(request: web.Request) -> web.Response:
        if request.path == "/__counts":
            return web.json_response(counts)
        key = f"{request.host.split(':')[0]}{request.path}"
        counts[key] = counts.get(key, 0) + 1
        if request.path == "/robots.txt":
            return web.Response(text="User-agent: *\nAllow: /\n")
        if request.path.startswith("/slow/"):
            await asyncio.sleep(0.3)
        if request.path.startswith("/flaky/") and counts[key] == 1:
            return web.Response(status=503)
        return web.Response(body=PAGE, content_type="text/html")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/{tail:.*}", handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=2048)
        await site.start()
        port_out.value = runner.addresses[0][1]
        ready.set()
        await asyncio.Event().wait()

    asyncio.run(main())


@pytest.fixture(scope="module")
def web_port() -> Iterator[int]:
    ctx = multiprocessing.get_context("spawn")
    port, ready = ctx.Value("i", 0), ctx.Event()
    server = ctx.Process(target=_serve, args=(port, ready), daemon=True)
    server.start()
    try:
        assert ready.wait(120), "web server did not start"
        yield int(port.value)
    finally:
        server.terminate()
        server.join(10)


async def _counts(port: int) -> dict[str, int]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /__counts HTTP/1.0\r\nHost: x\r\n\r\n")
    data = await reader.read()
    writer.close()
    return dict(json.loads(data.split(b"\r\n\r\n", 1)[1]))


def _urls(port: int, tag: str) -> list[str]:
    out = []
    for h in range(HOSTS):
        for i in range(PER_HOST):
            kind = "slow" if i == 0 else "flaky" if i == 1 else "p"
            out.append(f"http://h{h}-{tag}.load.test:{port}/{kind}/{i}")
    return out


def _pinned(command: list[str]) -> list[str]:
    return ["taskset", "-c", "0", *command] if shutil.which("taskset") else command


async def _read(kafka: Any, topic: Topic, start: dict[int, int], batch: str, cls: type[Any]) -> list[Any]:
    messages = [decode(r.value, cls) for r in await read_all(kafka, [topic], since={topic.name: start})]
    return [m for m in messages if m.batch == batch]


async def _crawl(settings: Settings, port: int, *, starved: bool, log: Path) -> dict[str, Any]:
    tag = "starved" if starved else "idle"
    batch = f"load-{tag}-{uuid.uuid4().hex[:8]}"
    urls = _urls(port, tag)
    kafka = settings.kafka
    start = {t.name: (await high_watermarks(kafka, [t])).get(t.name, {}) for t in (RAW_PAGE, RAW_PAGE_DLQ)}
    env = {
        **os.environ,
        **settings_env(settings),
        "PYTHONUNBUFFERED": "1",
        "STREAMCRAWL_METRICS_ENABLED": "false",
        "STREAMCRAWL_KAFKA_COMMIT_INTERVAL_S": "0.5",
        "STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS": "true",
        "STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES": '{"*.load.test": "127.0.0.1"}',
        "STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S": "0",
        "STREAMCRAWL_INGESTOR_PER_HOST_CONCURRENCY": "8",
        "STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY": "1000",  # every host name is 127.0.0.1 here
        "STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S": "3",
        "STREAMCRAWL_INGESTOR_READ_TIMEOUT_S": "2",
        "STREAMCRAWL_INGESTOR_CONNECT_TIMEOUT_S": "2",
        "STREAMCRAWL_INGESTOR_REQUEUE_BASE_DELAY_S": "0.5",
    }
    hogs: list[subprocess.Popen[bytes]] = []
    command = [sys.executable, "-m", "workers.ingestor"]
    with log.open("ab") as out:
        if starved:
            hogs = [
                subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
                    _pinned([sys.executable, "-c", "while True: pass"]), start_new_session=True
                )
                for _ in range(HOGS)
            ]
        ingestor = subprocess.Popen(  # noqa: ASYNC220 - started once, not awaited
            _pinned(command) if starved else command,
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        producer = make_producer(kafka)
        await producer.start()
        try:
            sends = []
            for url in urls:
                host = url.split("/")[2].split(":")[0]
                request = CrawlRequest(
                    url=url, url_hash=url_hash(url), host=host, requested_at=time.time(), batch=batch
                )
                sends.append(
                    await producer.send(
                        CRAWL_REQUEST.name,
                        encode(request),
                        key=host.encode(),
                        headers=make_headers(uuid.uuid4().hex),
                    )
                )
            await asyncio.gather(*sends)
        finally:
            await producer.stop()
        began = time.monotonic()
        pages: list[RawPage] = []
        letters: list[DeadLetter] = []
        for _ in range(240):  # 4 minutes at most
            pages = await _read(kafka, RAW_PAGE, start[RAW_PAGE.name], batch, RawPage)
            letters = await _read(kafka, RAW_PAGE_DLQ, start[RAW_PAGE_DLQ.name], batch, DeadLetter)
            if len({p.url for p in pages}) + len(letters) >= len(urls) or ingestor.poll() is not None:
                break
            await asyncio.sleep(1.0)
        elapsed = time.monotonic() - began
    finally:
        for proc in (ingestor, *hogs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM if proc is ingestor else signal.SIGKILL)
        for proc in (ingestor, *hogs):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
    counts = await _counts(port)
    return {
        "urls": urls,
        "fetched": {p.url.replace(tag, "*") for p in pages if p.status == 200},
        "letters": [f"{d.error_class}: {d.error_message}" for d in letters],
        "gets": {k: v for k, v in counts.items() if f"-{tag}." in k and not k.endswith("/robots.txt")},
        "elapsed": elapsed,
    }


async def test_a_starved_machine_fetches_the_same_urls_once_each(
    settings: Settings, web_port: int, tmp_path: Path
) -> None:
    idle = await _crawl(settings, web_port, starved=False, log=tmp_path / "idle.log")
    starved = await _crawl(settings, web_port, starved=True, log=tmp_path / "starved.log")
    print(f"\nidle {idle['elapsed']:.1f} s, starved {starved['elapsed']:.1f} s for {len(idle['urls'])} URLs")
    tail = (tmp_path / "starved.log").read_text(errors="replace")[-3000:]
    for run in (idle, starved):
        assert run["letters"] == [], (run["letters"][:5], tail)
        assert len(run["fetched"]) == len(run["urls"]), tail
        first_time = {k: v for k, v in run["gets"].items() if "/flaky/" not in k}
        again = sorted(k for k, v in first_time.items() if v != 1)
        assert again == [], f"fetched more than once: {again[:10]} ({len(again)})"
        assert all(v == 2 for k, v in run["gets"].items() if "/flaky/" in k)
    assert starved["fetched"] == idle["fetched"]
