"""Publishing to Kafka from the gateway: produce a whole batch, then await its delivery reports.

The producer is idempotent with acks=all, so an `accepted` answer means the
record is durably in Kafka. Records are produced without awaiting each one; the
gateway then awaits all delivery reports together, up to the configured
timeout: an item without a report by then is answered `unavailable` and the
app retries it (the retry is deduplicated downstream).
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer


@dataclass(frozen=True)
class OutboundRecord:
    topic: str
    key: bytes
    value: bytes


class KafkaPublisher:
    def __init__(self, bootstrap: str, delivery_timeout_s: float = 10.0) -> None:
        self._timeout = delivery_timeout_s
        self._brokers_up = False
        self._closed = threading.Event()
        self._producer = Producer(
            {
                "bootstrap.servers": bootstrap,
                "acks": "all",
                "enable.idempotence": True,
                # The Java client's and faust's partitioner, so any producer of a key
                # (a re-drive tool, a connector) lands it where the dedup state is.
                "partitioner": "murmur2_random",
                "linger.ms": 5,
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
        brokers = json.loads(raw).get("brokers", {})
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
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[bool]] = []
        for record in records:
            future: asyncio.Future[bool] = loop.create_future()
            futures.append(future)

            def on_delivery(err: Any, _msg: Any, future: asyncio.Future[bool] = future) -> None:
                loop.call_soon_threadsafe(_settle, future, err is None)

            try:
                self._producer.produce(
                    record.topic, key=record.key, value=record.value, on_delivery=on_delivery
                )
            except (BufferError, KafkaException):
                # A full local queue or a producer in a fatal state: this item is
                # answered `unavailable` and the app retries it.
                future.set_result(False)
        if not futures:
            return []
        done, _pending = await asyncio.wait(futures, timeout=self._timeout + 1.0)
        return [f in done and f.result() for f in futures]

    def close(self) -> None:
        self._producer.flush(self._timeout)
        self._closed.set()
        self._poller.join(timeout=2)


def _settle(future: asyncio.Future[bool], ok: bool) -> None:
    if not future.done():
        future.set_result(ok)
