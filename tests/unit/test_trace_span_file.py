"""The dev span file: one JSON line per span, bounded by rotation, read back whole."""

from __future__ import annotations

from pathlib import Path

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, Status, StatusCode

from sbp.tracing.span_file import SpanFile, read_spans, span_record


def finished_spans() -> list[ReadableSpan]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource({"service.name": "svc"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    root = tracer.start_span("root", attributes={"n": 3, "ids": ["a", "b"]})
    with trace.use_span(root, end_on_exit=True):
        link = Link(root.get_span_context())
        with tracer.start_as_current_span("child", links=[link]) as child:
            child.set_status(Status(StatusCode.ERROR))
    return list(exporter.get_finished_spans())


def test_a_record_names_ids_parent_service_times_attributes_and_links() -> None:
    child, root = (span_record(s) for s in finished_spans())
    assert root["parentId"] is None
    assert child["parentId"] == root["spanId"]
    assert child["traceId"] == root["traceId"]
    assert len(root["traceId"]) == 32 and len(root["spanId"]) == 16
    assert child["links"] == [{"traceId": root["traceId"], "spanId": root["spanId"]}]
    assert (root["name"], root["service"], root["kind"]) == ("root", "svc", "INTERNAL")
    assert root["attributes"] == {"n": 3, "ids": ("a", "b")}
    assert (child["status"], root["status"]) == ("ERROR", "UNSET")
    assert root["start"] <= child["start"] <= child["end"] <= root["end"]


def test_spans_are_appended_and_read_back_in_order(tmp_path: Path) -> None:
    spans = finished_spans()
    file = SpanFile(tmp_path / "svc.jsonl", max_bytes=1 << 20)
    file.export(spans[:1])
    file.export(spans[1:])
    assert [s["name"] for s in read_spans(tmp_path)] == ["child", "root"]
    assert read_spans(tmp_path)[1]["attributes"]["ids"] == ["a", "b"]


def test_a_full_file_moves_aside_once_and_both_are_read(tmp_path: Path) -> None:
    spans = finished_spans()
    file = SpanFile(tmp_path / "svc.jsonl", max_bytes=10)
    for span in (spans[0], spans[1], spans[0]):
        file.export([span])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.jsonl", "svc.jsonl.1"]
    # The oldest went when the file moved aside a second time: the files stay bounded.
    assert [s["name"] for s in read_spans(tmp_path)] == ["root", "child"]


def test_a_line_still_being_written_is_not_read(tmp_path: Path) -> None:
    file = SpanFile(tmp_path / "svc.jsonl", max_bytes=1 << 20)
    file.export(finished_spans()[:1])
    with (tmp_path / "svc.jsonl").open("ab") as out:
        out.write(b'{"traceId": "abc')
    assert [s["name"] for s in read_spans(tmp_path)] == ["child"]
