"""A consumer batch's spans: one per upstream trace, parented on it, carried onward."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from sbp.tracing.batch_spans import BatchSpans
from sbp.tracing.kafka_context import Headers, header
from sbp.tracing.provider import sampler

TRACE_A, SPAN_A = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
TRACE_B, SPAN_B = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"


def traceparent(trace_id: str, span_id: str, flags: str = "01") -> bytes:
    return f"00-{trace_id}-{span_id}-{flags}".encode()


@dataclass
class Record:
    offset: int
    headers: Headers | None


def headers_of(record: Record) -> Headers | None:
    return record.headers


def recording_spans() -> tuple[BatchSpans[Record], InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler(1.0, edge=False))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    spans = BatchSpans(provider.get_tracer("t"), "process votes.raw", headers_of, {"a": "b"})
    return spans, exporter


def ids(span: ReadableSpan) -> tuple[str, str, str | None]:
    assert span.context is not None
    parent = f"{span.parent.span_id:016x}" if span.parent else None
    return f"{span.context.trace_id:032x}", f"{span.context.span_id:016x}", parent


A = [("traceparent", traceparent(TRACE_A, SPAN_A))]
B = [("traceparent", traceparent(TRACE_B, SPAN_B)), ("tracestate", b"v=1")]
BATCH = [
    Record(0, A),
    Record(1, B),
    Record(2, A),
    Record(3, None),
    Record(4, [("traceparent", traceparent(TRACE_B, SPAN_A, "00"))]),
    Record(5, [("traceparent", b"not a traceparent")]),
]


def test_one_span_per_sampled_trace_each_a_child_of_its_upstream_span() -> None:
    spans, exporter = recording_spans()
    with spans.batch(BATCH):
        pass
    finished = sorted(exporter.get_finished_spans(), key=lambda s: ids(s)[0])
    assert [ids(s)[0] for s in finished] == [TRACE_A, TRACE_B]
    assert [ids(s)[2] for s in finished] == [SPAN_A, SPAN_B]
    a, b = finished
    assert a.name == b.name == "process votes.raw"
    assert a.attributes == {"a": "b", "messaging.batch.message_count": 2, "sbp.batch.records": 6}
    assert b.attributes == {"a": "b", "messaging.batch.message_count": 1, "sbp.batch.records": 6}
    assert b.context is not None and b.context.trace_state.get("v") == "1"
    # The spans cover the same batch.
    assert (a.start_time, a.end_time) == (b.start_time, b.end_time)


def test_records_produced_onward_carry_their_own_traces_span() -> None:
    spans, exporter = recording_spans()
    with spans.batch(BATCH):
        forwarded = {r.offset: spans.headers_for(r) for r in BATCH}
    by_trace = {ids(s)[0]: ids(s)[1] for s in exporter.get_finished_spans()}
    for offset, trace_id in ((0, TRACE_A), (2, TRACE_A), (1, TRACE_B)):
        value = header(forwarded[offset], "traceparent")
        assert value is not None
        assert value.decode().split("-")[1:3] == [trace_id, by_trace[trace_id]]
    # No context, an unsampled one or a malformed one: nothing to carry.
    assert [forwarded[i] for i in (3, 4, 5)] == [None, None, None]
    (a,) = [s for s in exporter.get_finished_spans() if ids(s)[0] == TRACE_A]
    assert a.attributes is not None and a.attributes["sbp.records.forwarded"] == 2


def test_a_failed_batch_ends_its_spans_as_errors_and_still_raises() -> None:
    spans, exporter = recording_spans()
    with pytest.raises(RuntimeError, match="boom"), spans.batch(BATCH[:2]):
        raise RuntimeError("boom")
    finished = exporter.get_finished_spans()
    assert len(finished) == 2
    assert {s.status.status_code for s in finished} == {StatusCode.ERROR}
    assert all(s.events[0].name == "exception" for s in finished)
    # After the batch, nothing is carried for its records any more.
    assert spans.headers_for(BATCH[0]) is None


def test_without_a_tracer_nothing_is_made_or_carried() -> None:
    spans: BatchSpans[Record] = BatchSpans(None, "process votes.raw", headers_of)
    assert not spans.enabled
    with spans.batch(BATCH):
        assert spans.headers_for(BATCH[0]) is None
