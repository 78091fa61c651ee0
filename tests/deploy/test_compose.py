"""docker-compose.yml, checked without a Docker engine: the Compose specification's schema,
pinned images, health checks and start order, and no secret in the file."""

import json
import re
import tomllib
from typing import Any
from urllib.parse import quote

import jsonschema
import pytest
import yaml
from modstream.core.packages import fetch_wheel, read_member
from modstream.core.settings import PROJECT_ROOT, Settings
from sqlalchemy.engine import make_url

from tests.conftest import SHARED_CACHE

# The Compose specification's schema as check-jsonschema (a maintained validator) vendors it.
SCHEMA_WHEEL = ("check-jsonschema", "0.39.0")
SCHEMA_MEMBER = "check_jsonschema/builtin_schemas/vendor/compose-spec.json"
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.gpu.yml"]
VARIABLE = re.compile(r"\$\{(?P<name>[A-Z0-9_]+)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}|\$\$")


def env_example() -> dict[str, str]:
    lines = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable substitution: ${X}, ${X:-default}, ${X:?error}, and $$ for a literal $."""

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, op, arg = match.group("name", "op", "arg")
        if name in env and (env[name] or op not in (":-", ":?")):
            return env[name]
        if op and op.endswith("?"):
            raise AssertionError(f"${{{name}}} is required: {arg}")
        return arg if op else ""

    return VARIABLE.sub(value, text)


def load(name: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(interpolate((PROJECT_ROOT / name).read_text(), env or env_example()))
    return loaded


@pytest.fixture(scope="module")
def compose_schema() -> dict[str, Any]:
    wheel = fetch_wheel(*SCHEMA_WHEEL, SHARED_CACHE)
    schema: dict[str, Any] = json.loads(read_member(wheel, SCHEMA_MEMBER))
    return schema


@pytest.mark.parametrize("name", COMPOSE_FILES)
def test_compose_files_follow_the_compose_specification(name: str, compose_schema: dict[str, Any]) -> None:
    validator = jsonschema.validators.validator_for(compose_schema)(compose_schema)
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(load(name))]
    assert errors == []


def test_the_schema_check_catches_a_mistake(compose_schema: dict[str, Any]) -> None:
    broken = load("docker-compose.yml")
    broken["services"]["worker"]["healthcheck"]["interval"] = ["10s"]
    broken["services"]["worker"]["depends_on"]["kafka"]["condition"] = "service_ready"
    validator = jsonschema.validators.validator_for(compose_schema)(compose_schema)
    assert len(list(validator.iter_errors(broken))) >= 2


def test_every_image_is_pinned_by_tag() -> None:
    for name in COMPOSE_FILES:
        for service, spec in load(name)["services"].items():
            image = spec.get("image", "")
            if not image:
                continue  # an override that changes other keys
            tag = image.rpartition(":")[2] if ":" in image.rpartition("/")[2] else ""
            assert tag and tag != "latest", f"{name}: {service} uses {image!r}"
    for dockerfile in ["Dockerfile", *map(str, PROJECT_ROOT.glob("deploy/*/Dockerfile"))]:
        for line in (PROJECT_ROOT / dockerfile).read_text().splitlines():
            if line.startswith("FROM "):
                image = line.split()[1]
                assert re.search(r":[\w.-]+$", image) and not image.endswith(":latest"), f"{dockerfile}: {line}"


def test_every_service_has_a_health_check_and_starts_after_healthy_dependencies() -> None:
    services = load("docker-compose.yml")["services"]
    one_shot = {name for name, spec in services.items() if spec.get("restart") == "no"}
    assert one_shot == {"init", "cli", "bucket-events"}
    for name, spec in services.items():
        if name not in one_shot:
            assert spec.get("healthcheck", {}).get("test"), f"{name} has no health check"
        for dependency, how in spec.get("depends_on", {}).items():
            expected = "service_completed_successfully" if dependency in one_shot else "service_healthy"
            assert how["condition"] == expected, f"{name} -> {dependency}"
    for name in ("worker", "dashboard", "triton", "archive"):
        assert services[name]["depends_on"]["init"]["condition"] == "service_completed_successfully"


def test_the_worker_scales_and_data_lives_in_named_volumes() -> None:
    compose = load("docker-compose.yml")
    worker = compose["services"]["worker"]
    # `--scale worker=N` needs no fixed name and no host port.
    assert "container_name" not in worker and "ports" not in worker
    for name, spec in compose["services"].items():
        for mount in spec.get("volumes", []):
            source = mount.split(":")[0]
            assert source.startswith("./") or source in compose["volumes"], f"{name}: {mount}"
        for port in spec.get("ports", []):
            assert port.startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    for data in ("kafka-data", "minio-data", "redis-data", "postgres-data", "models"):
        assert data in compose["volumes"]


def test_no_secret_is_written_in_the_compose_file() -> None:
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    example = env_example()
    for key, value in example.items():
        if any(word in key for word in ("PASSWORD", "SECRET")):
            assert value not in text, key
            assert f"${{{key}:?" in text, f"{key} must come from .env, refusing to start without it"
    with pytest.raises(AssertionError, match="MINIO_ROOT_PASSWORD"):
        load("docker-compose.yml", {k: v for k, v in example.items() if k != "MINIO_ROOT_PASSWORD"})
    assert ".env" in (PROJECT_ROOT / ".gitignore").read_text().splitlines()


def test_the_containers_point_the_services_at_each_other() -> None:
    compose = load("docker-compose.yml")
    env = compose["services"]["worker"]["environment"]
    assert env["MODSTREAM_KAFKA_BOOTSTRAP"] == "kafka:9092" and env["MODSTREAM_S3_ENDPOINT"] == "minio:9000"
    assert env["MODSTREAM_REDIS_URL"] == f"redis://:{env_example()['REDIS_PASSWORD']}@redis:6379/0"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    # Real Kafka refuses session timeouts under 6 s (the local broker's default is 3).
    assert float(env["MODSTREAM_BROKER_SESSION_TIMEOUT"]) >= 6
    scrape = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert jobs["modstream-worker"]["dns_sd_configs"][0]["names"] == ["worker"]
    assert jobs["modstream-dashboard"]["static_configs"][0]["targets"] == ["dashboard:18081"]


def test_the_archiver_runs_beside_the_workers_and_is_scraped_like_them() -> None:
    compose = load("docker-compose.yml")
    services = compose["services"]
    archive, worker = services["archive"], services["worker"]
    assert archive["command"] == ["archive"]
    assert archive["image"] == worker["image"] and archive["environment"] == worker["environment"]
    assert archive["restart"] == "unless-stopped"
    # Scalable like the worker (one consumer group): no fixed name, no host port.
    assert "container_name" not in archive and "ports" not in archive
    # Its data lives in Kafka, the object store, Redis and the catalog's PostgreSQL; it needs no Triton.
    assert set(archive["depends_on"]) == {"init", "kafka", "minio", "redis", "postgres"}
    port = Settings().archive_web_port
    probe = " ".join(archive["healthcheck"]["test"])
    assert f"http://127.0.0.1:{port}/healthz" in probe and "!= 'ok'" in probe
    scrape = yaml.safe_load((PROJECT_ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in scrape["scrape_configs"]}
    assert jobs["modstream-archive"]["dns_sd_configs"] == [{"names": ["archive"], "type": "A", "port": port}]


def test_minio_announces_new_objects_in_the_notified_bucket_on_the_workers_topic(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    services = load("docker-compose.yml")["services"]
    minio, worker, subscribe = (services[n] for n in ("minio", "worker", "bucket-events"))
    minio_env, worker_env = minio["environment"], worker["environment"]
    (target,) = [k.rpartition("_")[2] for k, v in minio_env.items() if k.startswith("MINIO_NOTIFY_KAFKA_ENABLE_")]
    assert minio_env[f"MINIO_NOTIFY_KAFKA_ENABLE_{target}"] == "on"
    assert minio_env[f"MINIO_NOTIFY_KAFKA_BROKERS_{target}"] == worker_env["MODSTREAM_KAFKA_BOOTSTRAP"]
    topic = worker_env.get("MODSTREAM_TOPIC_S3_NOTIFICATIONS", Settings().topic_s3_notifications)
    assert minio_env[f"MINIO_NOTIFY_KAFKA_TOPIC_{target}"] == topic
    # Notifications wait on disk while Kafka is away: a named volume, so they outlive the container.
    queue = minio_env[f"MINIO_NOTIFY_KAFKA_QUEUE_DIR_{target}"]
    assert f"minio-events:{queue}" in minio["volumes"] and "minio-events" in load("docker-compose.yml")["volumes"]
    assert minio["depends_on"]["kafka"]["condition"] == "service_healthy"

    # The subscription: MinIO's ARN for an environment-declared target is upper case.
    script = " ".join(subscribe["entrypoint"])
    assert (
        f'mc event add --ignore-existing "modstream/$NOTIFIED_BUCKET" arn:minio:sqs::{target.upper()}:kafka --event put'
        in script
    )
    bucket = subscribe["environment"]["NOTIFIED_BUCKET"]
    assert bucket == env_example()["NOTIFIED_BUCKET"]
    # Topics exist only once init made them (Kafka does not create them on first use here).
    assert subscribe["depends_on"]["init"]["condition"] == "service_completed_successfully"
    assert services["kafka"]["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"

    # The worker takes that bucket, with a tenant for its keys, and it is not the SDK's bucket
    # (objects the SDK stores are announced by the SDK: announced twice, they would be decided twice).
    for name, value in worker_env.items():
        monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)  # as the worker reads its environment
    assert bucket in settings.allowed_buckets and bucket != settings.uploads_bucket
    assert settings.notification_tenant_from_key or bucket in settings.notification_tenants


def test_every_process_of_the_archive_shares_one_catalog_in_postgresql() -> None:
    # Left empty, each container would get a sqlite catalog of its own (core/lake.py) and the
    # dashboard's Quality page would read an empty archive.
    services = load("docker-compose.yml")["services"]
    postgres = services["postgres"]
    env = postgres["environment"]
    password = env_example()["POSTGRES_PASSWORD"]
    assert env["POSTGRES_PASSWORD"] == password
    catalog = services["archive"]["environment"]["MODSTREAM_ARCHIVE_CATALOG"]
    url = make_url(catalog)
    assert (url.drivername, url.username, url.password) == ("postgresql+psycopg2", env["POSTGRES_USER"], password)
    assert (url.host, url.port, url.database) == ("postgres", 5432, env["POSTGRES_DB"])
    for name in ("archive", "dashboard", "cli", "worker", "init"):
        assert services[name]["environment"]["MODSTREAM_ARCHIVE_CATALOG"] == catalog, name
    for name in ("archive", "dashboard", "cli"):
        assert services[name]["depends_on"]["postgres"]["condition"] == "service_healthy", name
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    # PostgreSQL 18's image keeps its data in a folder per major version under this one.
    assert "postgres-data:/var/lib/postgresql" in postgres["volumes"]
    assert int(postgres["image"].rpartition(":")[2].split(".")[0]) >= 18
    # The password goes into the URL as it is: the example's must need no percent-encoding.
    assert quote(password, safe="") == password
    # The image's driver: pyiceberg's extra for it is a core dependency, so `pip install .` has it.
    requirements = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    (pyiceberg,) = [r for r in requirements if r.startswith("pyiceberg[")]
    assert "sql-postgres" in pyiceberg.partition("[")[2].partition("]")[0].split(",")
