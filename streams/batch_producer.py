"""Produce many records, then await all their delivery reports at once.

One confluent-kafka producer (librdkafka: idempotent, acks=all) serves a whole
process. A caller opens a `Deliveries` batch, produces into it without
awaiting each record, and awaits `confirm()` once: one wake-up of the event
loop per batch. A failed or missing report raises `DeliveryFailed`, and the
caller must not treat the batch as done. Batches are separate objects, so two
coroutines producing at once never confirm each other's records.

Order per partition is kept by the idempotent producer, which the vote stage
relies on: a partition's progress marker is produced after the data it guards,
to the same changelog partition.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

from confluent_kafka import KafkaError, Producer


class DeliveryFailed(RuntimeError):
    """Kafka did not confirm every record of a batch."""


# librdkafka's "no partition given: use the partitioner".
_ANY_PARTITION = -1


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Deliveries:
    """The delivery reports of one batch of records.

    No lock: the loop thread alone counts what it produced, and the producer's
    poll thread alone counts reports (it is the only thread that polls). A
    report and `confirm()` each look at the other's count after writing their
    own, so whichever comes second sees the batch complete.
    """

    def __init__(self, producer: Producer, loop: asyncio.AbstractEventLoop) -> None:
        self._produce = producer.produce
        self._loop = loop
        self._delivered = 0
        self._target: int | None = None
        self._errors: list[str] = []
        self._done: asyncio.Future[None] = loop.create_future()
        # The highest offset confirmed per (topic, partition), for callers that
        # record how far a changelog is durable.
        self.offsets: dict[tuple[str, int], int] = {}
        self.count = 0

    def _on_delivery(self, err: KafkaError | None, msg: Any) -> None:
        # Runs on the producer's poll thread.
        if err is not None:
            if len(self._errors) < 10:
                self._errors.append(str(err))
        else:
            where = (msg.topic(), msg.partition())
            offset = msg.offset()
            if offset > self.offsets.get(where, -1):
                self.offsets[where] = offset
        self._delivered += 1
        if self._delivered == self._target:
            self._loop.call_soon_threadsafe(_resolve, self._done)

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> None:
        if self._target is not None:
            raise RuntimeError("this batch was already confirmed")
        where = _ANY_PARTITION if partition is None else partition
        while True:
            try:
                # Positional: topic, value, key, partition, callback (= on_delivery).
                if headers:
                    wire: list[tuple[str, str | bytes | None]] = list(headers)
                    self._produce(topic, value, key, where, self._on_delivery, headers=wire)
                else:
                    self._produce(topic, value, key, where, self._on_delivery)
                break
            except BufferError:
                # The local queue is full; the poll thread drains it as reports
                # arrive (only that thread polls, so reports stay on one thread).
                time.sleep(0.005)
        self.count += 1

    async def confirm(self, timeout_s: float = 60.0) -> dict[tuple[str, int], int]:
        """Await every report of this batch; returns the highest offset per partition."""
        self._target = self.count
        if self._delivered < self._target:
            try:
                await asyncio.wait_for(asyncio.shield(self._done), timeout_s)
            except TimeoutError as exc:
                raise DeliveryFailed(
                    f"{self._target - self._delivered} records unconfirmed after {timeout_s}s"
                ) from exc
        if self._errors:
            raise DeliveryFailed("; ".join(self._errors))
        return self.offsets


class DeliveryBatch(Protocol):
    """One batch of records whose reports are awaited together (`Deliveries`)."""

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> None: ...

    async def confirm(self, timeout_s: float = 60.0) -> dict[tuple[str, int], int]: ...


class DeliveryBatches(Protocol):
    """Anything that opens batches of deliveries; unit tests pass a recording one."""

    def batch(self) -> DeliveryBatch: ...


class BatchProducer:
    def __init__(
        self, kafka_config: Mapping[str, str], *, client_id: str, linger_ms: int = 5
    ) -> None:
        """`kafka_config`: the producing principal's (`settings.kafka_config(...)`)."""
        self._producer = Producer(
            {
                **kafka_config,
                "client.id": client_id,
                "acks": "all",
                "enable.idempotence": True,
                # The Java client's and faust's partitioner, for records produced by key.
                "partitioner": "murmur2_random",
                "linger.ms": linger_ms,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 500_000,
            }
        )
        self._closed = threading.Event()
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-poll", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def batch(self) -> Deliveries:
        """A new batch; call from the event loop that will await it."""
        return Deliveries(self._producer, asyncio.get_running_loop())

    def close(self, timeout_s: float = 10.0) -> None:
        self._producer.flush(timeout_s)
        self._closed.set()
        self._poller.join(timeout=2)
