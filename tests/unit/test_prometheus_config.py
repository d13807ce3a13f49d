"""Prometheus configuration and rules, checked with Prometheus' own `promtool`.

`promtool check rules` and `promtool test rules` (each alert fires on the situation it
describes and not on the healthy one beside it), and `promtool check config` on the three
Prometheus configurations: the one `streamcrawl up` renders, docker-compose's and the
Kubernetes one. The embedded stack's scrape jobs must cover every supervisord program on the
ports the daemons bind, and the dashboard's queries must only use series that exist.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from workers.observability.metrics import LAG_EXPORTER_PORT_OFFSET, STAGE_PORT_OFFSET
from workers.settings import MetricsSettings, Settings, StackSettings
from workers.stack.prometheus import RULES_FILE, render_config, scrape_jobs
from workers.stack.supervisor import API_PROGRAM, PROGRAMS

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = ROOT / RULES_FILE


def promtool(*args: str, cwd: Path | None = None) -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is missing: `make install` installs Debian's prometheus package")
    result = subprocess.run(
        [binary, *args], capture_output=True, text=True, timeout=120, check=False, cwd=cwd
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def with_local_rules(config_text: str, tmp_path: Path) -> Path:
    """The config with its in-container rules path pointed at the checkout's rules file."""
    config = yaml.safe_load(config_text)
    config["rule_files"] = [str(RULES)]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_rules_are_valid() -> None:
    out = promtool("check", "rules", str(RULES))
    assert "SUCCESS" in out


def test_every_alert_fires_when_it_should() -> None:
    out = promtool("test", "rules", str(RULES.with_name("streamcrawl.rules.test.yml")))
    assert "SUCCESS" in out
    tested = set(re.findall(r"alertname: (\w+)", RULES.with_name("streamcrawl.rules.test.yml").read_text()))
    alerts = {
        rule["alert"]
        for group in yaml.safe_load(RULES.read_text())["groups"]
        for rule in group["rules"]
        if "alert" in rule
    }
    assert alerts == tested, f"alerts without a promtool test: {sorted(alerts - tested)}"


def test_embedded_stack_config_is_valid_and_scrapes_every_program(tmp_path: Path) -> None:
    settings = Settings(stack=StackSettings(data_dir=tmp_path, start_rich_renderer=True))
    path = tmp_path / "prometheus.yml"
    path.write_text(render_config(settings, rules=RULES))
    promtool("check", "config", str(path))
    jobs = scrape_jobs(settings)
    base = MetricsSettings().base_port
    for program in PROGRAMS:
        if program is API_PROGRAM:
            assert program.name not in jobs  # its /metrics needs a read key
            continue
        offsets = {s.value: o for s, o in STAGE_PORT_OFFSET.items()} | {
            "lag_exporter": LAG_EXPORTER_PORT_OFFSET
        }
        first = base + offsets[program.name]
        assert jobs[program.name] == [f"127.0.0.1:{first + i}" for i in range(program.numprocs)]
    assert jobs["prometheus"] == [f"127.0.0.1:{settings.stack.prometheus_port}"]
    without_renderer = Settings(stack=StackSettings(data_dir=tmp_path, start_rich_renderer=False))
    assert "rich_renderer" not in scrape_jobs(without_renderer)


def test_compose_and_kubernetes_configs_are_valid(tmp_path: Path) -> None:
    for name in ("compose.yml", "kubernetes.yml"):
        text = (MONITORING / "prometheus" / name).read_text()
        assert yaml.safe_load(text)["rule_files"] == ["/etc/prometheus/rules/streamcrawl.rules.yml"]
        (tmp_path / name).mkdir()
        promtool("check", "config", str(with_local_rules(text, tmp_path / name)))
