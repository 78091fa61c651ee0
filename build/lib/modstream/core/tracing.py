"""OpenTelemetry tracing, with W3C trace context carried in Kafka message headers."""

from collections.abc import Sequence

from opentelemetry import context, propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

KafkaHeaders = Sequence[tuple[str, bytes]]

_configured = False


def configure_tracing(service: str, exporter: str) -> None:
    """Install a tracer provider once per process; ``exporter`` is none, console or otlp."""
    global _configured
    if _configured or exporter == "none":
        return
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
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


def extract_context(headers: KafkaHeaders | None) -> context.Context:
    carrier = {k: v.decode(errors="replace") for k, v in (headers or []) if isinstance(v, bytes)}
    return propagate.extract(carrier)
