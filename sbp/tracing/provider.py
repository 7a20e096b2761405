"""A process's tracer: sampler, bounded batch span processor, exporter.

Spans are handed to a `BatchSpanProcessor`, whose bounded queue drops a span
when full instead of waiting, and whose own thread does the export, so neither
an event loop (gateway, vote stage) nor the sink's loop ever waits on a file or
a collector.

Sampling is decided once per vote batch, at the gateway (`edge=True`): by trace
id ratio, whether or not the caller sent a trace context, so a caller's sampled
flag cannot force tracing onto the platform (its trace id is still kept, so the
caller's trace continues). Downstream processes follow their parent's decision.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, Sampler, TraceIdRatioBased
from opentelemetry.trace import Tracer

from sbp.settings import Settings
from sbp.tracing.span_file import SpanFile

# The spans one export call sends; below the queue size whatever it is set to.
_EXPORT_BATCH = 512
_OTLP_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Tracing:
    """A process's tracer and what must be flushed when the process stops."""

    tracer: Tracer
    provider: TracerProvider

    def close(self) -> None:
        """Export what is queued and stop the export thread (blocking: call off the loop)."""
        self.provider.shutdown()


def sampler(ratio: float, *, edge: bool) -> Sampler:
    by_ratio = TraceIdRatioBased(ratio)
    if edge:
        # A remote parent is the caller's; its flag is not trusted either way.
        return ParentBased(
            by_ratio, remote_parent_sampled=by_ratio, remote_parent_not_sampled=by_ratio
        )
    return ParentBased(by_ratio)


def exporter(settings: Settings, service: str) -> SpanExporter | None:
    target = settings.traces_to
    if target == "file":
        return SpanFile(settings.trace_dir / f"{service}.jsonl", settings.trace_file_max_bytes)
    if target == "otlp":
        if not settings.otlp_traces_endpoint:
            raise ValueError("SBP_TRACE_EXPORTER=otlp needs SBP_OTLP_TRACES_ENDPOINT")
        # Imported here: protobuf and requests load only in processes that export OTLP.
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        return OTLPSpanExporter(endpoint=settings.otlp_traces_endpoint, timeout=_OTLP_TIMEOUT_S)
    return None


def open_tracing(
    settings: Settings, service: str, *, instance: str | None = None, edge: bool = False
) -> Tracing | None:
    """The process's tracing, or None when `settings.traces_to` is "none"."""
    span_exporter = exporter(settings, service)
    if span_exporter is None:
        return None
    resource = Resource.create(
        {
            "service.namespace": "sbp",
            "service.name": service,
            "service.instance.id": instance or f"{socket.gethostname()}-{os.getpid()}",
        }
    )
    provider = TracerProvider(
        sampler=sampler(settings.trace_sample_ratio, edge=edge), resource=resource
    )
    provider.add_span_processor(
        BatchSpanProcessor(
            span_exporter,
            max_queue_size=settings.trace_queue_size,
            schedule_delay_millis=settings.trace_export_delay_ms,
            max_export_batch_size=min(_EXPORT_BATCH, settings.trace_queue_size),
        )
    )
    return Tracing(provider.get_tracer("sbp"), provider)
