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
    settings = Settings(_secrets_dir=tmp_path)  # type: ignore[call-arg]
    assert settings.s3_secret_key.get_secret_value() == "from-a-mounted-secret"
    assert "from-a-mounted-secret" not in repr(settings)


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
