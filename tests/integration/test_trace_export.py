"""The OTLP setting: spans reach a collector over OTLP/HTTP (protobuf), service named.

The collector is a loopback HTTP endpoint that records what it is sent; the
project's own tracing setup (`open_tracing`) exports to it as a service would.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from sbp.settings import settings_from_env
from sbp.tracing.provider import open_tracing


class Collector(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Receive)
        self.received: list[tuple[str, str | None, bytes]] = []


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads what was received."""


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_spans_are_exported_over_otlp_http_to_the_configured_endpoint(collector: Collector) -> None:
    endpoint = f"http://127.0.0.1:{collector.server_address[1]}/v1/traces"
    settings = settings_from_env({"SBP_OTLP_TRACES_ENDPOINT": endpoint})
    assert settings.traces_to == "otlp"
    tracing = open_tracing(settings, "sbp-gateway", instance="gw-1", edge=True)
    assert tracing is not None
    with tracing.tracer.start_as_current_span("POST /api/v1/votes/batch") as span:
        span.set_attribute("sbp.tenant_id", "acme")
    tracing.close()  # exports what is queued

    ((path, content_type, body),) = collector.received
    assert (path, content_type) == ("/v1/traces", "application/x-protobuf")
    request = ExportTraceServiceRequest.FromString(body)
    (resource_spans,) = request.resource_spans
    resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
    assert (resource["service.name"], resource["service.instance.id"]) == ("sbp-gateway", "gw-1")
    ((exported,),) = [scope.spans for scope in resource_spans.scope_spans]
    assert exported.name == "POST /api/v1/votes/batch"
    assert exported.trace_id == span.get_span_context().trace_id.to_bytes(16, "big")
    assert {a.key: a.value.string_value for a in exported.attributes} == {"sbp.tenant_id": "acme"}
