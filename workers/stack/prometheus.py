"""Prometheus of the embedded stack: Debian's ``prometheus`` scraping every daemon.

``streamcrawl up`` renders ``<data dir>/prometheus/prometheus.yml`` with one scrape job per
supervisord program (job = program name, one target per process: base port + the stage's
offset + process number, as in ``workers/observability/metrics.py``), the lag exporter and
Prometheus itself, and loads the alert and recording rules of the checkout
(``deploy/monitoring/rules/streamcrawl.rules.yml``, the same file docker-compose and the
Kubernetes manifests use). The server listens on 127.0.0.1:STREAMCRAWL_PROMETHEUS_PORT, keeps
its TSDB under the data dir, and is off with STREAMCRAWL_START_PROMETHEUS=false.
"""

from __future__ import annotations

import json
import shutil
import signal
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workers.errors import StackError
from workers.observability.metrics import LAG_EXPORTER_PORT_OFFSET, STAGE_PORT_OFFSET
from workers.settings import Settings, StackSettings
from workers.stack.component import Component
from workers.stack.paths import StackPaths, project_root
from workers.stack.ports import LOCALHOST, PortClaim, env_name
from workers.stack.process import ProcessSpec
from workers.stack.supervisor import API_PROGRAM, LAG_EXPORTER_PROGRAM, PROGRAMS, Program
from workers.topics import Stage

__all__ = ["RULES_FILE", "Prometheus", "TargetHealth", "render_config", "scrape_jobs"]

RULES_FILE = Path("deploy") / "monitoring" / "rules" / "streamcrawl.rules.yml"
"""Alert and recording rules, relative to the checkout (shared with compose and Kubernetes)."""
_RETENTION = "7d"


def _port_offset(program: Program) -> int:
    if program.name == LAG_EXPORTER_PROGRAM.name:
        return LAG_EXPORTER_PORT_OFFSET
    return STAGE_PORT_OFFSET[Stage(program.name)]


def scrape_jobs(settings: Settings) -> dict[str, list[str]]:
    """Job name -> ``host:port`` targets: every process supervisord runs, plus Prometheus itself."""
    jobs: dict[str, list[str]] = {}
    if settings.stack.start_workers and settings.metrics.enabled:
        for program in PROGRAMS:
            if program.name == Stage.RICH_RENDERER.value and not settings.stack.start_rich_renderer:
                continue
            if program.name == API_PROGRAM.name:
                # The API's /metrics needs a read key (docs/api.md); the embedded Prometheus holds none.
                continue
            first = settings.metrics.base_port + _port_offset(program)
            jobs[program.name] = [f"{LOCALHOST}:{first + i}" for i in range(program.numprocs)]
    jobs["prometheus"] = [f"{LOCALHOST}:{settings.stack.prometheus_port}"]
    return jobs


def render_config(settings: Settings, *, rules: Path) -> str:
    interval = f"{max(1.0, settings.stack.prometheus_scrape_interval_s):g}s"
    config: dict[str, Any] = {
        "global": {
            "scrape_interval": interval,
            "evaluation_interval": interval,
            "external_labels": {"streamcrawl": "embedded"},
        },
        "rule_files": [str(rules)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in scrape_jobs(settings).items()
        ],
    }
    header = "# Rendered by `streamcrawl up` (workers/stack/prometheus.py); edits are overwritten.\n"
    return header + yaml.safe_dump(config, sort_keys=False)


@dataclass(frozen=True, slots=True)
class TargetHealth:
    """What Prometheus says about its scrape targets (for `streamcrawl status`)."""

    url: str
    up: int = 0
    total: int = 0
    down: tuple[str, ...] = ()
    """``job instance: last error`` of every target that is not up."""
    error: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "url": self.url,
            "up": self.up,
            "total": self.total,
            "down": list(self.down),
            "error": self.error,
        }


def _find_binary() -> str | None:
    return shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").is_file() else None
    )


def prometheus_binary() -> Path:
    """Debian's Prometheus server; a StackError saying how to get it when it is missing."""
    found = _find_binary()
    if found is None:
        setting = env_name(StackSettings, "start_prometheus")
        raise StackError(
            "prometheus is not installed: run `make install` (Debian's prometheus package) "
            f"or set {setting}=false"
        )
    return Path(found)


class Prometheus(Component):
    name = "prometheus"
    ready_timeout_s = 60.0
    stop_signal = signal.SIGTERM
    stop_timeout_s = 10.0

    def __init__(self, *, settings: Settings, paths: StackPaths) -> None:
        super().__init__(run_dir=paths.run, log_dir=paths.logs)
        self.settings = settings
        self.paths = paths

    @property
    def port(self) -> int:
        return self.settings.stack.prometheus_port

    @property
    def home(self) -> Path:
        return self.paths.root / "prometheus"

    @property
    def config_path(self) -> Path:
        return self.home / "prometheus.yml"

    def address(self) -> str:
        return f"http://{LOCALHOST}:{self.port}"

    def port_claims(self) -> list[PortClaim]:
        return [PortClaim(self.port, env_name(StackSettings, "prometheus_port"))]

    def prepare(self) -> None:
        prometheus_binary()  # fail with what to do before anything is written
        rules = project_root() / RULES_FILE
        if not rules.is_file():
            raise StackError(f"prometheus: rules file {rules} is missing from the checkout")
        (self.home / "data").mkdir(parents=True, exist_ok=True)
        tmp = self.config_path.with_suffix(".tmp")
        tmp.write_text(render_config(self.settings, rules=rules))
        tmp.replace(self.config_path)

    def spec(self) -> ProcessSpec:
        return self.process_spec(
            [
                _find_binary() or "prometheus",
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.home / 'data'}",
                f"--storage.tsdb.retention.time={_RETENTION}",
                f"--web.listen-address={LOCALHOST}:{self.port}",
            ],
            cwd=self.home,
        )

    def probe(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.address()}/-/ready", timeout=2.0) as resp:
                return int(resp.status) == 200
        except (OSError, urllib.error.URLError):
            return False

    def targets(self) -> TargetHealth:
        """Health of every active scrape target, from Prometheus' own API."""
        try:
            with urllib.request.urlopen(f"{self.address()}/api/v1/targets?state=active", timeout=3.0) as resp:
                active = json.load(resp)["data"]["activeTargets"]
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            return TargetHealth(url=self.address(), error=f"{type(exc).__name__}: {exc}")
        down = tuple(
            f"{t['labels'].get('job')} {t['labels'].get('instance')}: {t.get('lastError') or t.get('health')}"
            for t in active
            if t.get("health") != "up"
        )
        return TargetHealth(url=self.address(), up=len(active) - len(down), total=len(active), down=down)
