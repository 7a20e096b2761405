"""The dev span exporter: one JSON line per span, appended to a file per service.

Tests and operators read these lines (`span_record` is their format). Each
export is one `write` on a file opened with O_APPEND, so processes sharing a
file (two workers of one service) never interleave within a line. The file is
bounded: past `max_bytes` it is moved to `<name>.1`, replacing the older one.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger(__name__)


def _hex(value: int, width: int) -> str:
    return format(value, f"0{width}x")


def span_record(span: ReadableSpan) -> dict[str, Any]:
    """A finished span as the file holds it; ids in W3C hex, times in Unix nanoseconds."""
    context = span.context
    parent = span.parent
    resource = span.resource.attributes
    return {
        "traceId": _hex(context.trace_id, 32) if context else None,
        "spanId": _hex(context.span_id, 16) if context else None,
        "parentId": _hex(parent.span_id, 16) if parent else None,
        "name": span.name,
        "kind": span.kind.name,
        "service": resource.get("service.name"),
        "serviceInstance": resource.get("service.instance.id"),
        "start": span.start_time,
        "end": span.end_time,
        "attributes": dict(span.attributes or {}),
        "links": [
            {"traceId": _hex(link.context.trace_id, 32), "spanId": _hex(link.context.span_id, 16)}
            for link in span.links
        ],
        "status": span.status.status_code.name,
        "events": [
            {"name": e.name, "time": e.timestamp, "attributes": dict(e.attributes or {})}
            for e in span.events
        ],
    }


class SpanFile(SpanExporter):
    def __init__(self, path: Path, max_bytes: int) -> None:
        self.path = path
        self._max_bytes = max_bytes
        self._lock = threading.Lock()
        self._warned = False
        path.parent.mkdir(parents=True, exist_ok=True)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        data = b"".join(orjson.dumps(span_record(span)) + b"\n" for span in spans)
        try:
            with self._lock:
                self._rotate_if_full()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
        except OSError as exc:
            # Spans are diagnostics: losing some never stops the service, but say so once.
            if not self._warned:
                self._warned = True
                log.warning("spans not written to %s: %s", self.path, exc)
            return SpanExportResult.FAILURE
        return SpanExportResult.SUCCESS

    def _rotate_if_full(self) -> None:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return
        if size >= self._max_bytes:
            os.replace(self.path, self.path.with_name(self.path.name + ".1"))

    def shutdown(self) -> None:
        """Nothing is held open between exports."""

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def read_spans(directory: Path) -> list[dict[str, Any]]:
    """Every span in the directory's span files, older files first."""
    spans: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.jsonl.1")) + sorted(directory.glob("*.jsonl")):
        # Up to the last newline: a line being written at this moment is not read.
        complete = path.read_bytes().split(b"\n")[:-1]
        spans.extend(orjson.loads(line) for line in complete if line)
    return spans
