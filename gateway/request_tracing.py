"""The gateway's request span: the root of a vote batch's trace.

A route wrapped by `traced` gets a SERVER span named "<method> <route>". It
continues the caller's W3C trace context when one is sent (the caller's trace
id is kept; whether it is sampled is decided here, see sbp/tracing/provider.py),
and otherwise starts a trace. A sampled request's answer carries a
`traceresponse` header (W3C Trace Context level 2) naming the trace, so an app
or an operator holding the answer can find it. With tracing off
(`app.state.tracing` is None) the route runs as it is.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from functools import wraps

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.requests import Request
from starlette.responses import Response

from gateway.vote_validation import ItemOutcome, counts
from sbp.tracing.provider import Tracing

Endpoint = Callable[[Request], Awaitable[Response]]
TRACERESPONSE = "traceresponse"

_propagator = TraceContextTextMapPropagator()


def traced(method: str, route: str) -> Callable[[Endpoint], Endpoint]:
    name = f"{method} {route}"

    def wrap(endpoint: Endpoint) -> Endpoint:
        @wraps(endpoint)
        async def traced_endpoint(request: Request) -> Response:
            tracing: Tracing | None = getattr(request.app.state, "tracing", None)
            if tracing is None:
                return await endpoint(request)
            parent = _propagator.extract(request.headers)
            with tracing.tracer.start_as_current_span(
                name,
                context=parent,
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "http.route": route},
            ) as span:
                response = await endpoint(request)
                span.set_attribute("http.response.status_code", response.status_code)
                if response.status_code >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                context = span.get_span_context()
                if context.trace_flags.sampled:
                    response.headers[TRACERESPONSE] = (
                        f"00-{context.trace_id:032x}-{context.span_id:016x}"
                        f"-{int(context.trace_flags):02x}"
                    )
                return response

        return traced_endpoint

    return wrap


def describe_votes(tenant_id: str, outcomes: Iterable[ItemOutcome]) -> None:
    """Name the batch's tenant, voteUuids and outcomes on the request span (when sampled):
    what an operator searches a batch's trace by."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    outcomes = list(outcomes)
    span.set_attribute("sbp.tenant_id", tenant_id)
    span.set_attribute("sbp.vote_uuids", [o.vote_uuid for o in outcomes if o.vote_uuid])
    for status, count in counts(outcomes).items():
        span.set_attribute(f"sbp.votes.{status}", count)
