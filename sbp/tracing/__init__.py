"""Traces: one trace per vote batch, from the gateway through Kafka to PostgreSQL.

- `provider`: each process's tracer (sampler, bounded span queue, exporter),
  or None when tracing is off, so the hot paths skip it with one test;
- `span_file`: the dev exporter, one JSON line per span;
- `kafka_context`: W3C trace context in Kafka record headers, and the producer span;
- `batch_spans`: a consumer's spans for one batch, one per upstream trace in it.

docs/architecture.md ("Traces") describes how the context travels.
"""
