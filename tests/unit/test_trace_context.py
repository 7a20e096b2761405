"""Trace context in Kafka headers, the producer span, the samplers and the tracer setup."""

from __future__ import annotations

from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from sbp.settings import settings_from_env
from sbp.tracing.kafka_context import header, headers_for, parent_context, producer_span
from sbp.tracing.provider import open_tracing, sampler
from sbp.tracing.span_file import read_spans

TRACE_ID = 0x0AF7651916CD43DD8448EB211C80319C
SPAN_ID = 0xB7AD6B7169203331
SAMPLED = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
UNSAMPLED = b"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"


def recording_tracer(
    ratio: float = 1.0, *, edge: bool = False
) -> tuple[trace.Tracer, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler(ratio, edge=edge))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider.get_tracer("test"), exporter


def test_a_sampled_traceparent_is_continued_with_its_ids() -> None:
    context = parent_context(SAMPLED, b"vendor=x")
    assert context is not None
    span_context = trace.get_current_span(context).get_span_context()
    assert (span_context.trace_id, span_context.span_id) == (TRACE_ID, SPAN_ID)
    assert span_context.is_remote
    assert span_context.trace_state.get("vendor") == "x"


@pytest.mark.parametrize(
    "value", [UNSAMPLED, b"garbage", b"00-00000000000000000000000000000000-b7ad6b7169203331-01"]
)
def test_an_unsampled_or_malformed_traceparent_gives_no_parent(value: bytes) -> None:
    assert parent_context(value, None) is None


def test_headers_name_the_span_and_are_only_made_for_sampled_spans() -> None:
    tracer, _ = recording_tracer()
    span = tracer.start_span("s")
    headers = dict(headers_for(span) or [])
    ids = span.get_span_context()
    flags = int(ids.trace_flags)
    assert flags & TraceFlags.SAMPLED
    expected = f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{flags:02x}"
    assert headers == {"traceparent": expected.encode()}
    unsampled = NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, False, TraceFlags(0)))
    assert headers_for(unsampled) is None


def test_header_takes_bytes_or_text_and_misses_quietly() -> None:
    assert header([("a", b"1"), ("traceparent", SAMPLED)], "traceparent") == SAMPLED
    assert header([("traceparent", SAMPLED.decode())], "traceparent") == SAMPLED
    assert header([("a", b"1")], "traceparent") is None
    assert header(None, "traceparent") is None
    assert header({"traceparent": SAMPLED}, "traceparent") == SAMPLED


async def test_the_producer_span_is_a_child_of_the_request_and_its_headers_name_it() -> None:
    tracer, exporter = recording_tracer()
    with (
        tracer.start_as_current_span("request") as request,
        producer_span(tracer, "votes.raw", 3) as send,
    ):
        send.delivered(2)
    produced, _request = exporter.get_finished_spans()
    assert produced.name == "send votes.raw"
    assert produced.parent is not None
    assert produced.parent.span_id == request.get_span_context().span_id
    assert produced.attributes == {
        "messaging.system": "kafka",
        "messaging.operation.name": "send",
        "messaging.destination.name": "votes.raw",
        "messaging.batch.message_count": 3,
        "sbp.records.confirmed": 2,
    }
    ids = produced.context
    assert ids is not None
    assert dict(send.headers or [])["traceparent"] == (
        f"00-{ids.trace_id:032x}-{ids.span_id:016x}-{int(ids.trace_flags):02x}".encode()
    )


def test_without_a_tracer_the_producer_span_carries_nothing() -> None:
    with producer_span(None, "votes.raw", 3) as send:
        send.delivered(3)
    assert send.headers is None
    assert send.span is None


def _remote(sampled: bool) -> trace.Span:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else 0)
    return NonRecordingSpan(SpanContext(TRACE_ID, SPAN_ID, True, flags))


def test_the_gateway_decides_by_ratio_whatever_the_caller_says() -> None:
    never, _ = recording_tracer(0.0, edge=True)
    forced = never.start_span("r", context=trace.set_span_in_context(_remote(sampled=True)))
    assert not forced.get_span_context().trace_flags.sampled
    always, _ = recording_tracer(1.0, edge=True)
    kept = always.start_span("r", context=trace.set_span_in_context(_remote(sampled=False)))
    assert kept.get_span_context().trace_flags.sampled
    # The caller's trace goes on, under the gateway's decision.
    assert kept.get_span_context().trace_id == TRACE_ID


def test_downstream_processes_follow_the_parents_decision() -> None:
    tracer, _ = recording_tracer(1.0)
    skipped = tracer.start_span("s", context=trace.set_span_in_context(_remote(sampled=False)))
    assert not skipped.get_span_context().trace_flags.sampled
    low, _ = recording_tracer(0.0)
    followed = low.start_span("s", context=trace.set_span_in_context(_remote(sampled=True)))
    assert followed.get_span_context().trace_flags.sampled


def test_tracing_off_makes_no_tracer(tmp_path: Path) -> None:
    settings = settings_from_env({"SBP_STATE_DIR": str(tmp_path), "SBP_TRACE_EXPORTER": "none"})
    assert open_tracing(settings, "sbp-test") is None
    # Outside dev mode nothing is exported unless a collector is named.
    production = settings_from_env({}).model_copy(update={"dev_mode": False})
    assert production.traces_to == "none"


def test_the_otlp_exporter_needs_an_endpoint(tmp_path: Path) -> None:
    settings = settings_from_env({"SBP_STATE_DIR": str(tmp_path), "SBP_TRACE_EXPORTER": "otlp"})
    with pytest.raises(ValueError, match="SBP_OTLP_TRACES_ENDPOINT"):
        open_tracing(settings, "sbp-test")
    auto = settings_from_env({"SBP_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"})
    assert auto.traces_to == "otlp"


def test_in_dev_spans_reach_the_services_file_when_tracing_closes(tmp_path: Path) -> None:
    settings = settings_from_env({"SBP_STATE_DIR": str(tmp_path)})
    tracing = open_tracing(settings, "sbp-test", instance="7")
    assert tracing is not None
    with (
        tracing.tracer.start_as_current_span("outer"),
        tracing.tracer.start_as_current_span("inner"),
    ):
        pass
    tracing.close()
    assert [p.name for p in settings.trace_dir.iterdir()] == ["sbp-test.jsonl"]
    inner, outer = read_spans(settings.trace_dir)
    assert (inner["name"], outer["name"]) == ("inner", "outer")
    assert inner["parentId"] == outer["spanId"]
    assert outer["parentId"] is None
    assert inner["traceId"] == outer["traceId"]
    assert (inner["service"], inner["serviceInstance"]) == ("sbp-test", "7")
