"""The Kubernetes manifests (deploy/kubernetes, Kustomize) validated offline.

``kubectl kustomize`` renders the base and the example overlay (no cluster needed); every
object is validated against the Kubernetes OpenAPI schemas bundled in ``kubernetes-validate``
(strict: unknown fields fail), and every KEDA ScaledObject against KEDA's CRD types
(``cloudcoil-models-keda``, generated from KEDA's CRDs: a field the schema does not know, or
a wrong type, fails). Then what a reviewer checks by hand: one Deployment per stage running
its module, probes on the lifecycle's /healthz and /readyz at the stage's metrics port,
resources, a grace period longer than the drain, a PDB each, KEDA scaling on the stage's own
consumer group and topic with maxReplicaCount never above the topic's partition count
(workers/topics.py), settings from a ConfigMap whose names are settings, credentials only
from Secrets, Dagster, the topic Job, and the monitoring ConfigMaps built from the same files
as docker-compose and `streamcrawl up`.
"""

from __future__ import annotations

import copy
import functools
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cloudcoil.models.keda.v1alpha1 import ScaledObject

from workers.observability.metrics import LAG_EXPORTER_PORT_OFFSET, STAGE_PORT_OFFSET
from workers.settings import KafkaSettings, MetricsSettings, WorkerSettings, env_names
from workers.topics import RAW_SITEMAP, STAGES, STORAGE_SAVED, Stage, Topic, topic_by_name

ROOT = Path(__file__).resolve().parents[2]
BASE = ROOT / "deploy" / "kubernetes" / "base"
OVERLAY = ROOT / "deploy" / "kubernetes" / "overlays" / "example"
MONITORING = ROOT / "deploy" / "monitoring"
K8S_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
KAFKA_MIN_SESSION_TIMEOUT_MS = 6000
SECRET_NAME = re.compile(r"PASSWORD|SECRET|ACCESS_KEY|TOKEN|SASL_USERNAME")


def _stage_inputs() -> dict[str, tuple[str, tuple[Topic, ...]]]:
    """Stage name -> (consumer group, input topics), from the topic registry."""
    # StageTopics.inputs (input + extra_inputs) comes with the discovery stage on main.
    out = {
        stage.value: (spec.group, tuple(getattr(spec, "inputs", (spec.input,))))
        for stage, spec in STAGES.items()
    }
    # The discovery stage (lead's workstream) reads storage.saved, raw.sitemap and the DLQs
    # and scales on the first two; until its Stage lands on main its group is spelled here.
    out.setdefault("discovery", ("streamcrawl.discovery", (STORAGE_SAVED, RAW_SITEMAP)))
    return out


STAGE_INPUTS = _stage_inputs()
PORT_OFFSETS = {s.value: o for s, o in STAGE_PORT_OFFSET.items()}
PORT_OFFSETS.setdefault("discovery", 50)
DEPLOYMENTS = {stage.replace("_", "-"): stage for stage in STAGE_INPUTS}


@functools.cache
def kubectl() -> str:
    found = shutil.which("kubectl")
    if found is None:
        pytest.fail("kubectl is missing: `make install` installs Debian's kubernetes-client")
    return found


@functools.cache
def render(path: Path) -> tuple[dict[str, Any], ...]:
    result = subprocess.run(
        [kubectl(), "kustomize", str(path)], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


def objects(path: Path, kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in render(path) if d["kind"] == kind}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return result


def settings_configmap(path: Path) -> dict[str, str]:
    (cm,) = [c for n, c in objects(path, "ConfigMap").items() if n.startswith("streamcrawl-settings")]
    data: dict[str, str] = cm["data"]
    return data


def validate_scaled_object(doc: dict[str, Any]) -> None:
    """Against KEDA's CRD types; fields the schema does not know would be dropped, so compare."""
    model = ScaledObject.model_validate(doc)
    assert model.model_dump(by_alias=True, exclude_unset=True, mode="json") == doc


@pytest.mark.parametrize("path", [BASE, OVERLAY], ids=["base", "overlay"])
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_validates_against_the_kubernetes_schemas(path: Path, version: str) -> None:
    kinds = set()
    for doc in render(path):
        kinds.add(doc["kind"])
        if doc["kind"] == "ScaledObject":
            validate_scaled_object(doc)
        else:
            kubernetes_validate.validate(doc, version, strict=True)
    assert {"Deployment", "PodDisruptionBudget", "ScaledObject", "Job", "ConfigMap", "Service"} <= kinds


def test_the_validators_reject_broken_objects() -> None:
    """Neither check is vacuous: a misspelt field and a wrong type fail."""
    deployment = copy.deepcopy(objects(BASE, "Deployment")["router"])
    containers(deployment)[0]["livenessProbe"]["httpGett"] = {"path": "/healthz", "port": "metrics"}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSIONS[0], strict=True)
    scaled = copy.deepcopy(objects(BASE, "ScaledObject")["router"])
    scaled["spec"]["maxReplicas"] = 3  # KEDA's field is maxReplicaCount
    with pytest.raises(AssertionError):
        validate_scaled_object(scaled)
    scaled = copy.deepcopy(objects(BASE, "ScaledObject")["router"])
    scaled["spec"]["maxReplicaCount"] = "twelve"
    with pytest.raises(ValueError):
        validate_scaled_object(scaled)


def test_one_deployment_per_stage_running_its_module() -> None:
    deployments = objects(BASE, "Deployment")
    assert set(DEPLOYMENTS) <= set(deployments)
    assert {"lag-exporter", "dagster-webserver", "dagster-daemon", "prometheus", "grafana"} <= set(
        deployments
    )
    for name, stage in DEPLOYMENTS.items():
        (container,) = containers(deployments[name])
        assert container["command"] == ["python", "-m", f"workers.{stage}"], name
        image = (
            "streamcrawl/renderer:latest" if stage == Stage.RICH_RENDERER else "streamcrawl/workers:latest"
        )
        assert container["image"] == image, f"{name}: only the renderer's image carries Chromium"


def test_probes_mean_something() -> None:
    """Liveness and readiness hit the lifecycle's /healthz and /readyz at the stage's metrics port."""
    base = MetricsSettings().base_port
    for name, stage in DEPLOYMENTS.items():
        deployment = objects(BASE, "Deployment")[name]
        (container,) = containers(deployment)
        port = base + PORT_OFFSETS[stage]
        assert container["ports"] == [{"name": "metrics", "containerPort": port}], name
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}, name
        assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}, name
        assert container["startupProbe"]["httpGet"]["path"] == "/healthz", name
    assert "lag-exporter" in objects(BASE, "Deployment")


def test_prometheus_finds_every_stage_through_a_headless_service() -> None:
    """Prometheus' DNS discovery (jobs named like compose's and `up`'s) reaches every replica."""
    base = MetricsSettings().base_port
    config = yaml.safe_load((MONITORING / "prometheus" / "kubernetes.yml").read_text())
    jobs = {
        job["job_name"]: (job["dns_sd_configs"][0]["names"][0], job["dns_sd_configs"][0]["port"])
        for job in config["scrape_configs"]
        if "dns_sd_configs" in job
    }
    services = objects(BASE, "Service")
    wanted = {stage: (name, base + PORT_OFFSETS[stage]) for name, stage in DEPLOYMENTS.items()}
    wanted["lag_exporter"] = ("lag-exporter", base + LAG_EXPORTER_PORT_OFFSET)
    assert set(jobs) == set(wanted)
    for job, (deployment_name, port) in wanted.items():
        service_name, scrape_port = jobs[job]
        assert scrape_port == port, job
        service = services[service_name]["spec"]
        assert service["clusterIP"] == "None" and service["publishNotReadyAddresses"] is True, service_name
        assert service["ports"] == [{"name": "metrics", "port": port, "targetPort": "metrics"}]
        pod_labels = objects(BASE, "Deployment")[deployment_name]["spec"]["template"]["metadata"]["labels"]
        assert service["selector"].items() <= pod_labels.items(), service_name


def test_every_container_has_requests_and_limits() -> None:
    for kind in ("Deployment", "Job"):
        for name, workload in objects(BASE, kind).items():
            for container in containers(workload):
                resources = container["resources"]
                for key in ("requests", "limits"):
                    assert {"cpu", "memory"} <= set(resources[key]), f"{kind} {name}: {key}"


def test_graceful_termination_fits_the_drain() -> None:
    drain = float(
        settings_configmap(BASE).get("STREAMCRAWL_WORKER_DRAIN_TIMEOUT_S", WorkerSettings().drain_timeout_s)
    )
    for name in DEPLOYMENTS:
        spec = objects(BASE, "Deployment")[name]["spec"]["template"]["spec"]
        # drain, then commit, flush and close the clients before the kubelet's SIGKILL
        assert spec["terminationGracePeriodSeconds"] >= drain + 15, name
        assert "preStop" not in containers(objects(BASE, "Deployment")[name])[0].get("lifecycle", {})


def test_a_disruption_budget_per_stage() -> None:
    budgets = objects(BASE, "PodDisruptionBudget")
    for name in DEPLOYMENTS:
        deployment = objects(BASE, "Deployment")[name]
        budget = budgets[name]["spec"]
        assert budget["maxUnavailable"] == 1, name
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert budget["selector"]["matchLabels"].items() <= labels.items(), name


def test_keda_scales_each_stage_on_its_lag_within_its_partitions() -> None:
    scaled = objects(BASE, "ScaledObject")
    config = settings_configmap(BASE)
    assert set(scaled) == set(DEPLOYMENTS), "one ScaledObject per stage"
    for name, stage in DEPLOYMENTS.items():
        spec = scaled[name]["spec"]
        group, inputs = STAGE_INPUTS[stage]
        assert spec["scaleTargetRef"] == {"name": name}
        triggers = spec["triggers"]
        assert {t["type"] for t in triggers} == {"kafka"}, name
        topics = {t["metadata"]["topic"] for t in triggers}
        assert inputs[0].name in topics, f"{name} scales on its main input topic"
        assert topics <= {t.name for t in inputs}, f"{name} scales on its own input topics only"
        for trigger in triggers:
            meta = trigger["metadata"]
            assert meta["consumerGroup"] == group, name
            assert meta["bootstrapServersFromEnv"] in config, "the brokers come from the ConfigMap"
            assert int(meta["lagThreshold"]) > 0
            assert meta["allowIdleConsumers"] == "false"
        partitions = min(topic_by_name(topic).partitions for topic in topics)
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"] <= partitions, (
            f"{name}: maxReplicaCount {spec['maxReplicaCount']} above the {partitions} partitions "
            "of its topic; raise the partitions in workers/topics.py (and on the cluster) first"
        )


def test_settings_from_a_configmap_credentials_from_secrets() -> None:
    config = settings_configmap(BASE)
    assert set(config) <= set(env_names()), f"not settings: {sorted(set(config) - set(env_names()))}"
    assert not [k for k in config if SECRET_NAME.search(k)], "credentials belong in the Secret"
    session = int(config.get("STREAMCRAWL_KAFKA_SESSION_TIMEOUT_MS", KafkaSettings().session_timeout_ms))
    heartbeat = int(
        config.get("STREAMCRAWL_KAFKA_HEARTBEAT_INTERVAL_MS", KafkaSettings().heartbeat_interval_ms)
    )
    assert session >= KAFKA_MIN_SESSION_TIMEOUT_MS, "Apache Kafka refuses session timeouts below 6 s"
    assert heartbeat * 3 <= session
    assert config["STREAMCRAWL_INGESTOR_ALLOW_PRIVATE_NETWORKS"] == "false"
    assert "Secret" not in {d["kind"] for d in render(OVERLAY)}, "no secret is committed"
    for kind in ("Deployment", "Job"):
        for name, workload in objects(BASE, kind).items():
            for container in containers(workload):
                refs = container.get("envFrom", [])
                if any("configMapRef" in r for r in refs):
                    assert {"secretRef": {"name": "streamcrawl-credentials"}} in refs, name
                for var in container.get("env", []):
                    assert not SECRET_NAME.search(var["name"]) or "valueFrom" in var, f"{name}: {var['name']}"


def test_dagster_webserver_daemon_and_the_topic_job() -> None:
    deployments = objects(BASE, "Deployment")
    webserver, daemon = deployments["dagster-webserver"], deployments["dagster-daemon"]
    assert containers(webserver)[0]["command"][0] == "dagster-webserver"
    assert containers(webserver)[0]["readinessProbe"]["httpGet"]["path"] == "/server_info"
    assert containers(daemon)[0]["command"][:2] == ["dagster-daemon", "run"]
    assert daemon["spec"]["replicas"] == 1 and daemon["spec"]["strategy"]["type"] == "Recreate"
    assert "dagster-webserver" in objects(BASE, "Service")
    (job,) = objects(BASE, "Job").values()
    assert containers(job)[0]["command"] == ["/usr/local/bin/streamcrawl-topic-init"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "OnFailure"


def test_monitoring_configmaps_are_the_shared_files() -> None:
    maps = {n.rsplit("-", 1)[0]: c["data"] for n, c in objects(BASE, "ConfigMap").items()}
    rules = (MONITORING / "rules" / "streamcrawl.rules.yml").read_text()
    assert maps["prometheus-rules"]["streamcrawl.rules.yml"] == rules
    dashboard = (MONITORING / "grafana" / "dashboards" / "streamcrawl.json").read_text()
    assert maps["grafana-dashboards"]["streamcrawl.json"] == dashboard
    config = yaml.safe_load(maps["prometheus-config"]["prometheus.yml"])
    assert config["rule_files"] == ["/etc/prometheus/rules/streamcrawl.rules.yml"]
    (prometheus,) = containers(objects(BASE, "Deployment")["prometheus"])
    mounts = {m["name"]: m["mountPath"] for m in prometheus["volumeMounts"]}
    assert mounts["rules"] == "/etc/prometheus/rules"
    (grafana,) = containers(objects(BASE, "Deployment")["grafana"])
    provider = yaml.safe_load(maps["grafana-dashboard-providers"]["streamcrawl.yml"])["providers"][0]
    assert {m["name"]: m["mountPath"] for m in grafana["volumeMounts"]}["dashboards"] == provider["options"][
        "path"
    ]


def test_the_overlay_sets_namespace_images_and_addresses() -> None:
    for doc in render(OVERLAY):
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == "streamcrawl", (
                f"{doc['kind']} {doc['metadata']['name']}"
            )
    for name, deployment in objects(OVERLAY, "Deployment").items():
        for container in containers(deployment):
            if "streamcrawl/" in container["image"]:
                assert container["image"].startswith("registry.example.org/streamcrawl/"), name
                assert container["image"].endswith(":0.1.0"), name
    config = settings_configmap(OVERLAY)
    assert config["STREAMCRAWL_KAFKA_BOOTSTRAP_SERVERS"] == "streamcrawl-kafka-bootstrap.kafka.svc:9092"
    assert config["STREAMCRAWL_PG_DATABASE"] == settings_configmap(BASE)["STREAMCRAWL_PG_DATABASE"]
    renderer = containers(objects(OVERLAY, "Deployment")["rich-renderer"])[0]
    env = {e["name"]: e["value"] for e in renderer["env"]}
    limit_mib = int(renderer["resources"]["limits"]["memory"].removesuffix("Gi")) * 1024
    assert int(env["STREAMCRAWL_RENDERER_MAX_BROWSER_RSS_MB"]) < limit_mib * 0.8, (
        "restart Chromium before the OOM killer"
    )
