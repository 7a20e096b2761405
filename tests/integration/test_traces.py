"""One vote batch is one trace: gateway request → produce → vote stage → PostgreSQL sink.

On the real stack, whose services export spans to the dev span files
(`settings.trace_dir`, sbp/tracing/span_file.py). The stage and the sink make
one span per trace per batch of theirs, so a gateway batch spread over two
partitions may be handled in one or several of their batches: the tests assert
that every published record is accounted for in this trace's spans, whichever.
"""

from __future__ import annotations

import secrets
from typing import Any

import httpx

from sbp.settings import Settings
from sbp.tracing.span_file import read_spans
from tests.integration.conftest import Tenant
from tests.integration.observe import vote_count, wait_for
from tests.integration.votes import vote

REQUEST = "POST /api/v1/votes/batch"
SEND = "send votes.raw"
STAGE = "process votes.raw"
SINK = "store votes.accepted"
SPAN_TIMEOUT_S = 30.0

Span = dict[str, Any]


def _post(tenant: Tenant, items: list[dict[str, Any]], traceparent: str | None) -> httpx.Response:
    headers = tenant.headers()
    if traceparent is not None:
        headers["traceparent"] = traceparent
    response = httpx.post(
        f"{tenant.gateway}/api/v1/votes/batch", json={"items": items}, headers=headers, timeout=30
    )
    assert response.status_code == 200, response.text
    return response


def _count(spans: list[Span], name: str) -> int:
    return sum(s["attributes"]["messaging.batch.message_count"] for s in spans if s["name"] == name)


def _whole_trace(settings: Settings, trace_id: str, published: int) -> list[Span] | None:
    """The trace's spans once its stage and sink spans account for every published vote."""
    spans = [s for s in read_spans(settings.trace_dir) if s["traceId"] == trace_id]
    names = {s["name"] for s in spans}
    if not {REQUEST, SEND} <= names:
        return None
    if _count(spans, STAGE) < published or _count(spans, SINK) < published:
        return None
    return spans


def _one(spans: list[Span], name: str) -> Span:
    (span,) = [s for s in spans if s["name"] == name]
    return span


def test_one_batch_is_one_trace_from_the_gateway_to_postgresql(tenant: Tenant) -> None:
    stored = [vote("z1", v) for v in (2, 3, -1)] + [vote("z2", v, kind="air") for v in (1, 5, 4)]
    refused = vote("z1", 9)  # out of range: answered rejected, never published
    items = [*stored, refused]
    caller_trace, caller_span = secrets.token_hex(16), secrets.token_hex(8)

    answer = _post(tenant, items, f"00-{caller_trace}-{caller_span}-01")
    assert answer.json()["counts"] == {
        "accepted": 6,
        "late_submission": 0,
        "duplicate": 0,
        "rejected": 1,
    }
    assert answer.headers["traceresponse"].split("-")[1] == caller_trace

    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 6 or None, 60, "6 rows")
    spans = wait_for(
        lambda: _whole_trace(tenant.settings, caller_trace, 6), SPAN_TIMEOUT_S, "the trace"
    )

    # The gateway: the caller's trace continued, one request span, one produce span.
    request, send = _one(spans, REQUEST), _one(spans, SEND)
    assert (request["service"], request["kind"]) == ("sbp-gateway", "SERVER")
    assert request["parentId"] == caller_span
    assert answer.headers["traceresponse"].split("-")[2] == request["spanId"]
    assert request["attributes"]["sbp.tenant_id"] == tenant.tenant_id
    assert request["attributes"]["sbp.vote_uuids"] == [i["voteUuid"] for i in items]
    assert request["attributes"]["http.response.status_code"] == 200
    assert (send["service"], send["kind"]) == ("sbp-gateway", "PRODUCER")
    assert send["parentId"] == request["spanId"]
    assert send["attributes"]["messaging.batch.message_count"] == 6
    assert send["attributes"]["sbp.records.confirmed"] == 6
    assert request["start"] <= send["start"] <= send["end"] <= request["end"]

    # The vote stage: each of its spans continues the produce span, and together they
    # handled and forwarded exactly the six published votes.
    stage = [s for s in spans if s["name"] == STAGE]
    assert {(s["service"], s["kind"], s["parentId"]) for s in stage} == {
        ("sbp-vote-stage", "CONSUMER", send["spanId"])
    }
    assert _count(spans, STAGE) == 6
    assert sum(s["attributes"]["sbp.records.forwarded"] for s in stage) == 6
    assert all(s["start"] >= send["start"] for s in stage)

    # The sink: each write span continues a stage span; together they stored the six.
    sink = [s for s in spans if s["name"] == SINK]
    assert {(s["service"], s["kind"]) for s in sink} == {("sbp-pg-sink", "CONSUMER")}
    assert {s["parentId"] for s in sink} <= {s["spanId"] for s in stage}
    assert _count(spans, SINK) == 6
    assert all(s["status"] == "UNSET" for s in spans)

    # Nothing else joined the trace, and no other request of this tenant was traced.
    assert {s["name"] for s in spans} == {REQUEST, SEND, STAGE, SINK}
    assert len(spans) == 2 + len(stage) + len(sink)
    tenant_requests = [
        s
        for s in read_spans(tenant.settings.trace_dir)
        if s["name"] == REQUEST and s["attributes"].get("sbp.tenant_id") == tenant.tenant_id
    ]
    assert [s["traceId"] for s in tenant_requests] == [caller_trace]


def test_without_a_caller_context_the_answer_names_the_trace_the_gateway_started(
    tenant: Tenant,
) -> None:
    answer = _post(tenant, [vote("z3", 1), vote("z3", -2)], traceparent=None)
    version, trace_id, span_id, flags = answer.headers["traceresponse"].split("-")
    assert (version, int(flags, 16) & 1) == ("00", 1)

    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 2 or None, 60, "2 rows")
    spans = wait_for(lambda: _whole_trace(tenant.settings, trace_id, 2), SPAN_TIMEOUT_S, "trace")
    request = _one(spans, REQUEST)
    assert (request["spanId"], request["parentId"]) == (span_id, None)
    assert _one(spans, SEND)["parentId"] == span_id
    assert _count(spans, STAGE) == _count(spans, SINK) == 2
