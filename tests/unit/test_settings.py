"""Credentials: from the environment or a secrets folder, TLS/SASL passed to every Kafka client, never shown."""

import ssl
from pathlib import Path

import faust
import pytest
from modstream.core.kafka import connection_options
from modstream.core.settings import Settings
from modstream.worker.app import broker_credentials
from pydantic import ValidationError


def test_plaintext_by_default() -> None:
    settings = Settings()
    plain = {"bootstrap_servers": settings.kafka_bootstrap, "security_protocol": "PLAINTEXT"}
    assert connection_options(settings) == plain
    assert broker_credentials(settings) is None


def test_sasl_over_tls_reaches_aiokafka_and_faust() -> None:
    settings = Settings(
        kafka_security_protocol="SASL_SSL", kafka_sasl_username="worker", kafka_sasl_password="s3cret-pass"
    )
    options = connection_options(settings)
    assert (options["sasl_mechanism"], options["sasl_plain_username"], options["sasl_plain_password"]) == (
        "SCRAM-SHA-512",
        "worker",
        "s3cret-pass",
    )
    assert isinstance(options["ssl_context"], ssl.SSLContext)
    credentials = broker_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    assert "s3cret-pass" not in repr(settings) + repr(credentials)


def test_tls_alone_gives_ssl_credentials() -> None:
    settings = Settings(kafka_security_protocol="SSL")
    assert isinstance(broker_credentials(settings), faust.SSLCredentials)
    assert "sasl_mechanism" not in connection_options(settings)


def test_sasl_without_credentials_is_refused_by_name() -> None:
    with pytest.raises(ValidationError, match="MODSTREAM_KAFKA_SASL_USERNAME and MODSTREAM_KAFKA_SASL_PASSWORD"):
        Settings(kafka_security_protocol="SASL_PLAINTEXT")


def test_secrets_come_from_files_named_like_the_variables(tmp_path: Path) -> None:
    (tmp_path / "modstream_s3_secret_key").write_text("from-a-mounted-secret")
    settings = Settings(secrets_dir=tmp_path)
    assert settings.s3_secret_key.get_secret_value() == "from-a-mounted-secret"
    assert "from-a-mounted-secret" not in repr(settings)


def test_the_secrets_folder_is_a_setting_like_any_other(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """MODSTREAM_SECRETS_DIR works from .env too, and is read when settings are made, not at import."""
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "modstream_s3_secret_key").write_text("from-the-folder")
    (secrets / "modstream_s3_access_key").write_text("key-from-the-folder")
    dotenv = tmp_path / ".env"
    dotenv.write_text(f"MODSTREAM_SECRETS_DIR={secrets}\n")
    monkeypatch.delenv("MODSTREAM_SECRETS_DIR", raising=False)
    monkeypatch.delenv("MODSTREAM_S3_SECRET_KEY", raising=False)
    monkeypatch.delenv("MODSTREAM_S3_ACCESS_KEY", raising=False)
    assert Settings(_env_file=None).s3_secret_key.get_secret_value() == "modstream-local-secret"  # type: ignore[call-arg]

    from_dotenv = Settings(_env_file=dotenv)  # type: ignore[call-arg]
    assert from_dotenv.secrets_dir == secrets
    assert from_dotenv.s3_secret_key.get_secret_value() == "from-the-folder"

    monkeypatch.setenv("MODSTREAM_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("MODSTREAM_S3_ACCESS_KEY", "from-the-environment")  # a variable beats a file
    from_environment = Settings(_env_file=None)  # type: ignore[call-arg]
    assert from_environment.s3_secret_key.get_secret_value() == "from-the-folder"
    assert from_environment.s3_access_key.get_secret_value() == "from-the-environment"
    # A child process started with as_env() reads the same folder.
    assert from_environment.as_env()["MODSTREAM_SECRETS_DIR"] == str(secrets)


def test_the_standard_otel_variable_chooses_the_trace_exporter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MODSTREAM_TRACE_EXPORTER", raising=False)
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    assert Settings().trace_exporter == "otlp"
    monkeypatch.setenv("MODSTREAM_TRACE_EXPORTER", "console")  # ours, when both are set
    assert Settings().trace_exporter == "console"
    monkeypatch.setenv("MODSTREAM_TRACE_EXPORTER", "jaeger")
    with pytest.raises(ValidationError, match=r"trace_exporter|MODSTREAM_TRACE_EXPORTER"):
        Settings()
    assert Settings(trace_exporter="none").trace_exporter == "none"
