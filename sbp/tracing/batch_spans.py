"""A consumer's spans for one batch: one span per upstream trace found in it.

A consumer's batch mixes records of many produced batches (many gateway
requests), and one produced batch may be spread over a few consumer batches.
Per record spans would cost a span per vote; one span for the whole batch
would belong to no request's trace. So a batch gets one span per distinct
sampled trace context among its records, each a child of that context's span
upstream, all spanning the batch's own start and end: "this request's records
were handled in a batch that took this long". Records without a context (an
unsampled request, an older producer) get no span.

Per record, the cost is a header lookup and a dict lookup; the contexts are
parsed once per distinct value. Records a consumer produces onward take the
headers of their trace's span here (`headers_for`), so the next hop continues it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from sbp.tracing.kafka_context import (
    TRACEPARENT,
    TRACESTATE,
    Headers,
    WireHeaders,
    header,
    headers_for,
    parent_context,
)

R = TypeVar("R")


@dataclass
class _TraceInBatch:
    span: Span
    headers: WireHeaders | None
    forwarded: int = 0


class BatchTrace(Generic[R]):
    """The spans of one batch, and which of them each of its records belongs to."""

    def __init__(self) -> None:
        self._traces: list[_TraceInBatch] = []
        # Each traced record's trace, by the record's id(): the batch's records live as
        # long as the batch does, and this spares a second header scan per emitted record.
        self._of_record: dict[int, _TraceInBatch] = {}

    @property
    def spans(self) -> list[Span]:
        return [t.span for t in self._traces]

    def add(self, span: Span, records: Sequence[R]) -> None:
        found = _TraceInBatch(span, headers_for(span))
        self._traces.append(found)
        for record in records:
            self._of_record[id(record)] = found

    def end(self, batch_records: int) -> None:
        """End every span at the same moment: the batch's end."""
        end = time.time_ns()
        for found in self._traces:
            found.span.set_attribute("sbp.batch.records", batch_records)
            if found.forwarded:
                found.span.set_attribute("sbp.records.forwarded", found.forwarded)
            found.span.end(end_time=end)

    def headers_for(self, record: R) -> WireHeaders | None:
        """The headers for a record produced from `record`: its trace's span here, or None."""
        if not self._of_record:
            return None
        found = self._of_record.get(id(record))
        if found is None:
            return None
        found.forwarded += 1
        return found.headers


class BatchSpans(Generic[R]):
    """Makes the spans of each batch a consumer handles; with no tracer, nothing at all."""

    def __init__(
        self,
        tracer: Tracer | None,
        name: str,
        headers_of: Callable[[R], Headers | None],
        attributes: dict[str, str] | None = None,
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._headers_of = headers_of
        self._attributes = attributes or {}
        # The batch being handled (a consumer handles one at a time).
        self.current: BatchTrace[R] = BatchTrace()

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def headers_for(self, record: R) -> WireHeaders | None:
        """`BatchTrace.headers_for` of the batch being handled; `record` must be one of
        its records (the same object)."""
        return self.current.headers_for(record)

    @contextmanager
    def batch(self, records: Sequence[R]) -> Iterator[BatchTrace[R]]:
        """The spans of `records`, open while the batch is handled.

        An exception marks them failed and propagates; the spans end either way.
        """
        tracer = self._tracer
        if tracer is None:
            yield self.current
            return
        trace = self._open(tracer, records)
        self.current = trace
        try:
            yield trace
        except BaseException as exc:
            for span in trace.spans:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            self.current = BatchTrace()
            trace.end(len(records))

    def _open(self, tracer: Tracer, records: Sequence[R]) -> BatchTrace[R]:
        by_context: dict[bytes, list[R]] = {}
        headers_of = self._headers_of
        for record in records:
            traceparent = header(headers_of(record), TRACEPARENT)
            if traceparent is not None:
                by_context.setdefault(traceparent, []).append(record)
        trace: BatchTrace[R] = BatchTrace()
        start = time.time_ns()
        for traceparent, traced in by_context.items():
            tracestate = header(headers_of(traced[0]), TRACESTATE)
            parent = parent_context(traceparent, tracestate)
            if parent is None:
                continue
            span = tracer.start_span(
                self._name,
                context=parent,
                kind=SpanKind.CONSUMER,
                start_time=start,
                attributes={**self._attributes, "messaging.batch.message_count": len(traced)},
            )
            trace.add(span, traced)
        return trace
