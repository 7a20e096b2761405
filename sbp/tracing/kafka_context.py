"""W3C trace context in Kafka record headers, and the producer's span.

A record carries `traceparent` (and `tracestate` when there is one) only when
its trace is sampled: a consumer that finds no context makes no span, which is
exactly what an unsampled parent would have led to, and unsampled records stay
as small as untraced ones. Every record of one produced batch carries the same
context, so consumers find a batch's trace by comparing header bytes, and parse
each distinct value once per batch, never once per record.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

# As aiokafka (bytes) and confluent-kafka (bytes, or str if a producer sent text) give
# them, or as a mapping (faust's test records may carry one).
Headers = Sequence[tuple[str, str | bytes | None]] | dict[str, str | bytes | None]
# What a producer passes to confluent-kafka's `produce(headers=...)`.
WireHeaders = list[tuple[str, bytes | None]]

_propagator = TraceContextTextMapPropagator()


def header(headers: Headers | None, name: str) -> bytes | None:
    """The first value of header `name`; None when absent (records carry few headers)."""
    if not headers:
        return None
    # The concrete type: an ABC check would cost more than the lookup (run per record).
    if isinstance(headers, dict):
        found = headers.get(name)
        return found.encode() if isinstance(found, str) else found
    for key, value in headers:
        if key == name:
            return value.encode() if isinstance(value, str) else value
    return None


def parent_context(traceparent: bytes, tracestate: bytes | None) -> Context | None:
    """The context a consumer's span continues; None for a malformed or unsampled one."""
    carrier = {TRACEPARENT: traceparent.decode("ascii", "replace")}
    if tracestate:
        carrier[TRACESTATE] = tracestate.decode("ascii", "replace")
    context = _propagator.extract(carrier)
    span_context = trace.get_current_span(context).get_span_context()
    if not (span_context.is_valid and span_context.trace_flags.sampled):
        return None
    return context


def headers_for(span: Span) -> WireHeaders | None:
    """The headers that carry `span`'s context to the next consumer; None if unsampled."""
    if not span.get_span_context().trace_flags.sampled:
        return None
    carrier: dict[str, str] = {}
    _propagator.inject(carrier, context=trace.set_span_in_context(span))
    return [(name, value.encode("ascii")) for name, value in carrier.items()]


@dataclass
class ProducerSpan:
    """The span of one produced batch; `headers` go on each of its records."""

    span: Span | None = None
    headers: WireHeaders | None = None

    def delivered(self, confirmed: int) -> None:
        if self.span is not None:
            self.span.set_attribute("sbp.records.confirmed", confirmed)


@contextmanager
def producer_span(tracer: Tracer | None, topic: str, records: int) -> Iterator[ProducerSpan]:
    """A PRODUCER span, child of the current span, around producing a batch to `topic`
    and awaiting its delivery reports; with no tracer, nothing at all."""
    if tracer is None:
        yield ProducerSpan()
        return
    with tracer.start_as_current_span(
        f"send {topic}",
        kind=SpanKind.PRODUCER,
        attributes={
            "messaging.system": "kafka",
            "messaging.operation.name": "send",
            "messaging.destination.name": topic,
            "messaging.batch.message_count": records,
        },
    ) as span:
        yield ProducerSpan(span, headers_for(span))
