"""The gateway's request span: continues or starts a trace, names it in the answer."""

from __future__ import annotations

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from gateway.request_tracing import describe_votes, traced
from gateway.vote_validation import ItemError, ItemOutcome, ItemStatus
from sbp.tracing.provider import Tracing, sampler

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ROUTE = "/api/v1/votes/batch"


@traced("POST", ROUTE)
async def endpoint(request: Request) -> Response:
    describe_votes(
        "acme",
        [
            ItemOutcome(0, "u-0", ItemStatus.duplicate),
            ItemOutcome(1, None, ItemStatus.rejected, ItemError.invalid_schema, "no uuid"),
        ],
    )
    return JSONResponse({}, status_code=int(request.query_params.get("status", 200)))


def client(ratio: float | None) -> tuple[TestClient, InMemorySpanExporter]:
    app = Starlette(routes=[Route(ROUTE, endpoint, methods=["POST"])])
    exporter = InMemorySpanExporter()
    if ratio is None:
        app.state.tracing = None
    else:
        provider = TracerProvider(sampler=sampler(ratio, edge=True))
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        app.state.tracing = Tracing(provider.get_tracer("t"), provider)
    return TestClient(app), exporter


def test_a_callers_trace_is_continued_and_named_in_the_answer() -> None:
    http, exporter = client(1.0)
    answer = http.post(ROUTE, headers={"traceparent": CALLER})
    (span,) = exporter.get_finished_spans()
    assert span.context is not None and span.parent is not None
    assert (span.name, span.kind) == ("POST /api/v1/votes/batch", SpanKind.SERVER)
    assert f"{span.context.trace_id:032x}" == CALLER.split("-")[1]
    assert f"{span.parent.span_id:016x}" == CALLER.split("-")[2]
    trace_id, span_id = answer.headers["traceresponse"].split("-")[1:3]
    assert (trace_id, span_id) == (CALLER.split("-")[1], f"{span.context.span_id:016x}")
    assert span.attributes == {
        "http.request.method": "POST",
        "http.route": ROUTE,
        "http.response.status_code": 200,
        "sbp.tenant_id": "acme",
        "sbp.vote_uuids": ("u-0",),
        "sbp.votes.accepted": 0,
        "sbp.votes.late_submission": 0,
        "sbp.votes.duplicate": 1,
        "sbp.votes.rejected": 1,
    }


def test_without_a_caller_context_the_gateway_starts_a_trace() -> None:
    http, exporter = client(1.0)
    answer = http.post(ROUTE)
    (span,) = exporter.get_finished_spans()
    assert span.parent is None and span.context is not None
    assert answer.headers["traceresponse"].split("-")[1] == f"{span.context.trace_id:032x}"


def test_a_server_error_marks_the_span() -> None:
    http, exporter = client(1.0)
    http.post(ROUTE, params={"status": "503"})
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR


def test_an_unsampled_request_answers_without_a_trace() -> None:
    http, exporter = client(0.0)
    answer = http.post(ROUTE, headers={"traceparent": CALLER})
    assert answer.status_code == 200
    assert "traceresponse" not in answer.headers
    assert exporter.get_finished_spans() == ()


def test_with_tracing_off_the_route_runs_as_it_is() -> None:
    http, _ = client(None)
    answer = http.post(ROUTE, headers={"traceparent": CALLER})
    assert answer.status_code == 200
    assert "traceresponse" not in answer.headers
