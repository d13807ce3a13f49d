"""The embedded Prometheus during a crawl: `streamcrawl up` starts it, it scrapes every daemon.

A real `streamcrawl up` (Dagster off to save a minute; the rich renderer on, with Chromium)
crawls demo pages. While the crawl runs, Prometheus' HTTP API must show a consumption series
for every stage and a reading from the lag exporter, and every query of every panel of the
Grafana dashboard (deploy/monitoring/grafana/dashboards/streamcrawl.json) must return data
from this Prometheus; `streamcrawl status` must show Prometheus with every target up.
Grafana itself cannot run here (not packaged for Debian, no downloads); its queries can.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.accounting import assert_accounted
from tests.helpers.outcomes import crawl_and_wait
from tests.helpers.services import stack_env
from workers.demoweb import DemoWeb, demo_urls
from workers.settings import Settings
from workers.topics import Stage

pytestmark = [pytest.mark.integration, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "monitoring" / "grafana" / "dashboards" / "streamcrawl.json"
_CLI = [sys.executable, "-m", "workers.cli.main"]
# Grafana's built-in interval variables, as Grafana would fill them for a short time range.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "5s", "$__range": "5m"}


def _env(data_dir: Path) -> dict[str, str]:
    return stack_env(
        data_dir,
        STREAMCRAWL_BROKER_STORAGE="memory",
        STREAMCRAWL_START_DAGSTER="false",
        STREAMCRAWL_START_RICH_RENDERER="true",
        STREAMCRAWL_PROMETHEUS_SCRAPE_INTERVAL_S="1",
        STREAMCRAWL_METRICS_LAG_EXPORTER_INTERVAL_S="1",
        STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS="true",
        STREAMCRAWL_INGESTOR_RESOLVE_OVERRIDES='{"*.demo.test": "127.0.0.1"}',
        STREAMCRAWL_INGESTOR_TOTAL_TIMEOUT_S="3",
        STREAMCRAWL_INGESTOR_READ_TIMEOUT_S="2",
        STREAMCRAWL_INGESTOR_MAX_RETRIES="1",
        STREAMCRAWL_INGESTOR_MAX_REQUEUES="1",
        STREAMCRAWL_INGESTOR_REQUEUE_BASE_DELAY_S="0.5",
        STREAMCRAWL_INGESTOR_PER_IP_CONCURRENCY="64",
        STREAMCRAWL_INGESTOR_PER_HOST_DELAY_S="0.05",
        STREAMCRAWL_INGESTOR_CRAWL_DELAY_CAP_S="0.2",
        STREAMCRAWL_INGESTOR_RETRY_AFTER_CAP_S="2",
        STREAMCRAWL_RENDERER_CONCURRENCY="2",
    )


def _cli(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*_CLI, *args], env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict[str, str], Settings]]:
    if shutil.which("prometheus") is None:
        pytest.fail("prometheus is missing: `make install` installs Debian's prometheus package")
    data_dir = Path(tempfile.mkdtemp(prefix="streamcrawl-prom-test-"))
    os.chmod(data_dir, 0o711)
    env = _env(data_dir)
    try:
        up = _cli(env, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        for key in [k for k in os.environ if k.startswith("STREAMCRAWL_")]:
            monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("STREAMCRAWL_"):
                monkeypatch.setenv(key, value)
        yield env, Settings.load()
    finally:
        _cli(env, "down", timeout=120)
        shutil.rmtree(data_dir, ignore_errors=True)


def _query(settings: Settings, expr: str) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{settings.stack.prometheus_port}/api/v1/query?" + urllib.parse.urlencode(
        {"query": expr}
    )
    with urllib.request.urlopen(url, timeout=5) as resp:
        body = json.load(resp)
    assert body["status"] == "success", body
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def _grafana_expr(expr: str) -> str:
    for name, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(name, value)
    return expr


def _has_data(settings: Settings, expr: str) -> bool:
    """At least one series with a finite value (a quantile of no traffic is NaN: no data)."""
    return any(math.isfinite(float(r["value"][1])) for r in _query(settings, expr))


def _positive(settings: Settings, expr: str) -> set[str]:
    """The ``stage`` labels of the series of ``expr`` with a value above zero."""
    return {r["metric"].get("stage", "") for r in _query(settings, expr) if float(r["value"][1]) > 0}


async def test_prometheus_sees_every_stage_and_every_dashboard_panel_during_a_crawl(
    stack: tuple[dict[str, str], Settings], demo_web: DemoWeb
) -> None:
    env, settings = stack
    urls = demo_urls(port=demo_web.port, hosts=6, per_host=8, seed=11, spa_share=0.2, timeout_delay_s=5)
    assert any(u.kind == "spa" for u in urls), "the rich renderer needs pages"
    batch = f"prom-{time.time_ns()}"
    task = asyncio.create_task(crawl_and_wait(settings, [u.url for u in urls], batch, timeout_s=240))

    stages = {s.value for s in Stage}
    queries = {
        f"{panel['title']} [{target['refId']}]": _grafana_expr(target["expr"])
        for panel in json.loads(DASHBOARD.read_text())["panels"]
        for target in panel["targets"]
    }
    seen: set[str] = set()
    answered: set[str] = set()
    exporter = False
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and not task.done():
        seen |= await asyncio.to_thread(_positive, settings, "streamcrawl_messages_consumed_total")
        exporter = exporter or bool(
            await asyncio.to_thread(_positive, settings, 'streamcrawl_lag_exporter_up{job="lag_exporter"}')
        )
        for name, expr in queries.items():
            if name not in answered and await asyncio.to_thread(_has_data, settings, expr):
                answered.add(name)
        if seen >= stages and exporter and answered == set(queries):
            break
        await asyncio.sleep(0.5)
    progress = await task
    await assert_accounted(settings, urls, progress, batch=batch)
    targets = _query(settings, "up")
    assert seen >= stages, f"no consumption series during the crawl for {sorted(stages - seen)}; {targets}"
    assert exporter, "the lag exporter was never scraped"
    for stage in stages:
        up = _query(settings, f'up{{job="{stage}"}}')
        assert up and all(r["value"][1] == "1" for r in up), f"{stage}: {up}"
    missing = {name: queries[name] for name in sorted(set(queries) - answered)}
    assert not missing, f"dashboard queries that returned no data during the crawl: {missing}"

    status = _cli(env, "status", "--json", timeout=60)
    report = json.loads(status.stdout)
    (component,) = [c for c in report["components"] if c["name"] == "prometheus"]
    assert component["up"] and component["address"] == f"http://127.0.0.1:{settings.stack.prometheus_port}"
    prom = report["prometheus"]
    assert prom["error"] is None and prom["up"] == prom["total"] >= len(stages) + 2, prom
    human = _cli(env, "status", timeout=60).stdout
    assert f"prometheus http://127.0.0.1:{settings.stack.prometheus_port}" in human
