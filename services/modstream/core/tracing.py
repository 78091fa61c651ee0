"""OpenTelemetry tracing, with W3C trace context carried in Kafka message headers."""

import os
from collections.abc import Sequence

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

KafkaHeaders = Sequence[tuple[str, bytes]]

_configured = False


def configure_tracing(service: str, exporter: str) -> None:
    """Install a tracer provider once per process; ``exporter`` is none, console or otlp.

    OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES, when set, name the service instead;
    the OTLP exporter reads its endpoint, headers and timeouts from OTEL_EXPORTER_OTLP_*.
    """
    global _configured
    if _configured or exporter == "none":
        return
    named = os.environ.get("OTEL_SERVICE_NAME") or "service.name=" in os.environ.get("OTEL_RESOURCE_ATTRIBUTES", "")
    provider = TracerProvider(resource=Resource.create({} if named else {"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(_exporter(exporter)))
    trace.set_tracer_provider(provider)
    _configured = True


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        return ConsoleSpanExporter()
    if name == "otlp":
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter()
    raise ValueError(f"unknown trace exporter {name!r}: use none, console or otlp")


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject_headers() -> list[tuple[str, bytes]]:
    """The current trace context as Kafka headers."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return [(k, v.encode()) for k, v in carrier.items()]


def trace_carrier(headers: KafkaHeaders | None) -> dict[str, str]:
    """The trace context among Kafka headers, to keep with a record that outlives its message."""
    fields = propagate.get_global_textmap().fields
    return {k: v.decode(errors="replace") for k, v in (headers or []) if k in fields and isinstance(v, bytes)}


def extract_context(headers: KafkaHeaders | None) -> context.Context:
    return propagate.extract(trace_carrier(headers))
