"""What tracing adds per record and per request, measured in-process (no stack needed).

The end-to-end benches share the CPUs with everything else on the machine, and
the tracing hooks cost far less than their run-to-run noise. This measures the
hooks themselves, each against the same work with tracing off, using CPU time
of this process (median of `--repeat` rounds):

- **consumer batch** (the vote stage and the sink): `BatchSpans.batch` over a
  batch of 2,000 records shaped like aiokafka's, plus `headers_for` on every
  record (what the stage does for each emitted vote), with tracing off, on with
  records that carry no context, and on with one sampled context per 100
  records (20 gateway batches in a stage batch: 20 spans, exported through the
  bounded batch processor to a span file, as in dev);
- **gateway request**: the route wrapper, the produce span and the batch's
  attributes around an endpoint that does nothing else, off and on;
- **produce with headers**: confluent-kafka `produce` of 100,000 records into
  the local queue (no broker: librdkafka only queues them), with and without
  the traceparent header, since each traced record carries one.

Run: `.venv/bin/python -m bench.trace_cost`
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import Producer
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from bench.machine import describe_machine
from gateway.request_tracing import describe_votes, traced
from gateway.vote_validation import ItemOutcome, ItemStatus
from sbp.settings import settings_from_env
from sbp.tracing.batch_spans import BatchSpans
from sbp.tracing.kafka_context import Headers, producer_span
from sbp.tracing.provider import Tracing, open_tracing

BATCH = 2000
PER_TRACE = 100


@dataclass
class Message:
    """The part of an aiokafka record the hooks read."""

    headers: Headers


def records(traced_every: int) -> list[Message]:
    out = []
    headers: Headers = ()
    for index in range(BATCH):
        if traced_every and index % traced_every == 0:
            value = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01".encode()
            headers = (("traceparent", value),)
        out.append(Message(headers))
    return out


def cpu_us(run: Callable[[], None], rounds: int) -> float:
    """Median CPU microseconds of one call."""
    samples = []
    for _ in range(rounds):
        start = time.process_time_ns()
        run()
        samples.append((time.process_time_ns() - start) / 1000)
    return statistics.median(samples)


def consumer_batch(spans: BatchSpans[Message], batch: list[Message]) -> Callable[[], None]:
    def run() -> None:
        with spans.batch(batch):
            for record in batch:
                spans.headers_for(record)

    return run


def gateway_request(app: Starlette, rounds: int) -> float:
    outcomes = [ItemOutcome(i, secrets.token_hex(16), ItemStatus.duplicate) for i in range(100)]
    tracer = app.state.tracing.tracer if app.state.tracing else None

    @traced("POST", "/api/v1/votes/batch")
    async def endpoint(_request: Request) -> Response:
        with producer_span(tracer, "votes.raw", 100) as send:
            send.delivered(100)
        describe_votes("bench", outcomes)
        return Response(b"{}")

    caller = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01".encode()
    scope = {"type": "http", "method": "POST", "headers": [(b"traceparent", caller)], "app": app}

    async def many() -> float:
        samples = []
        for _ in range(rounds):
            start = time.process_time_ns()
            for _ in range(100):
                await endpoint(Request(scope))
            samples.append((time.process_time_ns() - start) / 100_000)
        return statistics.median(samples)

    return asyncio.run(many())


def produce_us(with_headers: bool, count: int = 100_000) -> float:
    producer = Producer(
        {
            "bootstrap.servers": "127.0.0.1:9",
            "queue.buffering.max.messages": count + 1,
            "message.timeout.ms": 600_000,
            "log_level": 0,
        }
    )
    traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01".encode()
    headers: list[tuple[str, str | bytes | None]] | None = (
        [("traceparent", traceparent)] if with_headers else None
    )
    value = secrets.token_bytes(120)
    start = time.process_time_ns()
    for index in range(count):
        producer.produce("bench", value, b"k%d" % index, -1, None, headers=headers)
    took = (time.process_time_ns() - start) / 1000 / count
    producer.purge()
    return took


def main(args: argparse.Namespace) -> None:
    print("== tracing cost, in-process ==")
    print(describe_machine())
    with tempfile.TemporaryDirectory() as state_dir:
        settings = settings_from_env({"SBP_STATE_DIR": state_dir, "SBP_TRACE_EXPORTER": "file"})
        tracing = open_tracing(settings, "bench", edge=True)
        assert tracing is not None
        on: BatchSpans[Any] = BatchSpans(tracing.tracer, "process votes.raw", _headers)
        off: BatchSpans[Any] = BatchSpans(None, "process votes.raw", _headers)
        untraced, traced_batch = records(0), records(PER_TRACE)
        rows = {
            "off": cpu_us(consumer_batch(off, traced_batch), args.repeat),
            "on, records without context": cpu_us(consumer_batch(on, untraced), args.repeat),
            f"on, a context per {PER_TRACE} records": cpu_us(
                consumer_batch(on, traced_batch), args.repeat
            ),
        }
        print(f"\nconsumer batch of {BATCH} records (µs per batch / per record):")
        for label, took in rows.items():
            print(f"  {label:<34} {took:9.1f} µs  {took / BATCH:6.3f} µs/record")

        app_off, app_on = Starlette(), Starlette()
        app_off.state.tracing = None
        app_on.state.tracing = tracing
        request_off = gateway_request(app_off, args.repeat)
        request_on = gateway_request(app_on, args.repeat)
        print("\ngateway request of 100 votes (request span, produce span, attributes):")
        added = request_on - request_off
        print(f"  off {request_off:8.1f} µs   on {request_on:8.1f} µs   added {added:8.1f} µs")
        _close(tracing)
        spans = sum(1 for path in Path(settings.trace_dir).glob("*.jsonl") for _ in path.open())
        print(f"  ({spans} spans written to the span file)")

    plain, with_headers = produce_us(False), produce_us(True)
    print("\nconfluent-kafka produce into the local queue, per record:")
    print(f"  no headers {plain:6.2f} µs   traceparent header {with_headers:6.2f} µs")


def _headers(message: Message) -> Headers:
    return message.headers


def _close(tracing: Tracing) -> None:
    tracing.close()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--repeat", type=int, default=50, help="rounds per figure (median)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    main(parse_args())
