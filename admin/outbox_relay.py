"""The outbox relay: publishes outbox rows to the config.* topics, in order, at least once.

One transaction per round: take up to 500 rows (locked, so a second relay skips
them), produce them all, wait until Kafka has confirmed every one, then delete
them and commit. A failure anywhere rolls the round back and the same rows go
again next round; a record published twice is harmless, because every config
record is a whole state under its key. Rows are taken in id order, and each
config topic has one partition, so a key's records reach Kafka in commit order.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Sequence
from typing import Any

import psycopg
from confluent_kafka import KafkaError, Producer

from schemas.codec import AvroCodec, Writer

log = logging.getLogger(__name__)

BATCH = 500
IDLE_POLL_S = 0.2
DELIVERY_TIMEOUT_S = 15.0


class RelayError(RuntimeError):
    pass


def producer_config(base: dict[str, str]) -> dict[str, Any]:
    return {
        **base,
        "acks": "all",
        "enable.idempotence": True,
        "partitioner": "murmur2_random",
        "linger.ms": 5,
        "delivery.timeout.ms": int(DELIVERY_TIMEOUT_S * 1000),
    }


class OutboxRelay:
    def __init__(
        self,
        dsn: str,
        producer: Producer,
        codec: AvroCodec,
        writers: dict[str, Writer],
    ) -> None:
        self._dsn = dsn
        self._producer = producer
        self._codec = codec
        self._writers = writers
        self.published = 0
        self.failed_rounds = 0

    async def run_forever(self) -> None:
        backoff = IDLE_POLL_S
        conn: psycopg.AsyncConnection[Any] | None = None
        while True:
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(self._dsn, connect_timeout=3)
                sent = await self.publish_round(conn)
                backoff = IDLE_POLL_S
                if sent == 0:
                    await asyncio.sleep(IDLE_POLL_S)
            except asyncio.CancelledError:
                if conn is not None:
                    await conn.close()
                raise
            except Exception as exc:
                self.failed_rounds += 1
                log.warning("outbox round failed, retrying in %.1fs: %s", backoff, exc)
                if conn is not None and conn.broken:
                    conn = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def publish_round(self, conn: psycopg.AsyncConnection[Any]) -> int:
        async with conn.transaction():
            cur = await conn.execute("SELECT * FROM sbp.outbox_take(%s)", (BATCH,))
            rows = await cur.fetchall()
            if not rows:
                return 0
            await asyncio.to_thread(self._produce_and_confirm, rows)
            await conn.execute("SELECT sbp.outbox_done(%s)", ([r[0] for r in rows],))
        self.published += len(rows)
        return len(rows)

    def _produce_and_confirm(self, rows: Sequence[tuple[Any, ...]]) -> None:
        failures: list[str] = []
        done = threading.Event()
        pending = [len(rows)]
        lock = threading.Lock()

        def report(err: KafkaError | None, _msg: Any) -> None:
            with lock:
                if err is not None:
                    failures.append(str(err))
                pending[0] -= 1
                if pending[0] == 0:
                    done.set()

        for _outbox_id, topic, key, payload in rows:
            writer = self._writers.get(topic)
            if writer is None:
                raise RelayError(f"no schema for outbox topic {topic!r}")
            value = None if payload is None else self._codec.encode(writer, payload)
            self._producer.produce(topic, key=key.encode(), value=value, on_delivery=report)
        deadline = time.monotonic() + DELIVERY_TIMEOUT_S + 5
        while not done.is_set() and time.monotonic() < deadline:
            self._producer.poll(0.1)
        if not done.is_set():
            raise RelayError(f"{pending[0]} outbox records unconfirmed by Kafka")
        if failures:
            raise RelayError(f"{len(failures)} outbox records refused: {failures[0]}")
