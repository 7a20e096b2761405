"""Publishing to Kafka from the gateway: produce a whole batch, then await its delivery reports.

The producer is idempotent with acks=all, so an `accepted` answer means the
record is durably in Kafka. Records are produced without awaiting each one; the
gateway then awaits all delivery reports together, up to the configured
timeout: an item without a report by then is answered `unavailable` and the
app retries it (the retry is deduplicated downstream). The reports of a batch
wake the event loop once, when the last one is in, not once per record.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, NamedTuple, Protocol

import orjson
from confluent_kafka import KafkaError, KafkaException, Producer
from opentelemetry.trace import Tracer

from sbp.tracing.kafka_context import WireHeaders, producer_span


class OutboundRecord(NamedTuple):
    topic: str
    key: bytes
    value: bytes


class Publisher(Protocol):
    """What the ingest step needs of a publisher; unit tests pass their own."""

    @property
    def connected(self) -> bool: ...

    async def publish(self, records: Sequence[OutboundRecord]) -> list[bool]: ...


class KafkaPublisher:
    def __init__(
        self,
        kafka_config: Mapping[str, str],
        delivery_timeout_s: float = 10.0,
        tracer: Tracer | None = None,
    ) -> None:
        """`kafka_config`: the gateway principal's (`settings.kafka_config("gateway")`);
        `tracer`: a span per published batch, its context in every record's headers."""
        self._timeout = delivery_timeout_s
        self._tracer = tracer
        self._brokers_up = False
        self._closed = threading.Event()
        self._producer = Producer(
            {
                **kafka_config,
                "acks": "all",
                "enable.idempotence": True,
                # The Java client's and faust's partitioner, so any producer of a key
                # (a re-drive tool, a connector) lands it where the dedup state is.
                "partitioner": "murmur2_random",
                # Requests from many callers share a partition's Kafka batch within
                # this window. At 15k votes/s over 24 partitions, 20 ms makes batches
                # of ~12 records instead of ~3. In single runs of bench/gateway_ingest.py
                # over 200 zones, 10 → 20 ms took the broker from about 1.0 to 0.5
                # CPU-seconds per 60k votes and the gateway from 4.0 to 3.0 (5 ms cost
                # more still), for 10-15 ms of added latency.
                "linger.ms": 20,
                "compression.type": "lz4",
                # librdkafka gives up on a record at the same moment the request does.
                "message.timeout.ms": int(delivery_timeout_s * 1000),
                "statistics.interval.ms": 1000,
                "stats_cb": self._on_stats,
                "error_cb": self._on_error,
            }
        )
        self._poller = threading.Thread(target=self._poll, name="kafka-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.1)

    def _on_stats(self, raw: str) -> None:
        brokers = orjson.loads(raw).get("brokers", {})
        self._brokers_up = any(
            b.get("state") == "UP" and b.get("nodeid", -1) >= 0 for b in brokers.values()
        )

    def _on_error(self, err: KafkaError) -> None:
        if err.code() == KafkaError._ALL_BROKERS_DOWN:
            self._brokers_up = False

    def wait_connected(self, timeout: float = 10.0) -> bool:
        """Ask for metadata once, so `connected` is true before the first stats arrive."""
        try:
            self._producer.list_topics(timeout=timeout)
        except Exception:
            return False
        self._brokers_up = True
        return True

    @property
    def connected(self) -> bool:
        return self._brokers_up

    async def publish(self, records: Sequence[OutboundRecord]) -> list[bool]:
        """Produce every record, then wait for all reports; True where Kafka confirmed."""
        if not records:
            return []
        with producer_span(self._tracer, records[0].topic, len(records)) as span:
            results = await self._produce_all(records, span.headers)
            span.delivered(sum(results))
        return results

    async def _produce_all(
        self, records: Sequence[OutboundRecord], headers: WireHeaders | None
    ) -> list[bool]:
        # confluent-kafka's own type for headers; one list shared by the batch's records.
        wire: list[tuple[str, str | bytes | None]] | None = list(headers) if headers else None
        loop = asyncio.get_running_loop()
        report = _BatchReport(loop, len(records))
        produce = self._producer.produce
        for index, record in enumerate(records):
            try:
                produce(
                    record.topic,
                    key=record.key,
                    value=record.value,
                    on_delivery=partial(report.delivered, index),
                    headers=wire,
                )
            except (BufferError, KafkaException):
                # A full local queue or a producer in a fatal state: this item is
                # answered `unavailable` and the app retries it.
                report.refused(index)
        # Reports still missing by then are answered unavailable (librdkafka itself
        # gives up at message.timeout.ms, so this is only a backstop).
        await asyncio.wait((report.done,), timeout=self._timeout + 1.0)
        return report.snapshot()

    def close(self) -> None:
        self._producer.flush(self._timeout)
        self._closed.set()
        self._poller.join(timeout=2)


class _BatchReport:
    """The delivery reports of one batch, settled with one loop wake-up, not one per record.

    `delivered` runs on the producer's poll thread, `refused` on the loop's thread
    while the batch is being produced, so the count of missing reports is kept
    under a lock. Whoever settles the last one completes `done`.
    """

    __slots__ = ("_lock", "_loop", "_pending", "_results", "done")

    def __init__(self, loop: asyncio.AbstractEventLoop, size: int) -> None:
        self._loop = loop
        self._lock = threading.Lock()
        self._results = [False] * size
        self._pending = size
        self.done: asyncio.Future[None] = loop.create_future()

    def delivered(self, index: int, err: Any, _msg: Any) -> None:
        """The delivery callback (poll thread)."""
        if self._settle(index, err is None):
            # A closed loop raises: nobody waits for this batch any more.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(_finish, self.done)

    def refused(self, index: int) -> None:
        """`produce` refused the record (loop thread)."""
        if self._settle(index, False):
            _finish(self.done)

    def _settle(self, index: int, ok: bool) -> bool:
        """Record one report; True for the batch's last one."""
        with self._lock:
            self._results[index] = ok
            self._pending -= 1
            return self._pending == 0

    def snapshot(self) -> list[bool]:
        """The results now: a record whose report is still missing counts as not confirmed."""
        with self._lock:
            return list(self._results)


def _finish(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
