"""Reading a topic's records between offsets, and producing records back: Kafka I/O of
the DLQ tools and the range re-drive.

Reading joins no consumer group and commits nothing: the partitions are assigned,
auto-commit is off, and the group id is the tools' own, which no pipeline consumer
uses, so a scan can never move the vote stage's or the sink's offsets. It reads as the
admin principal (the DLQ is nobody else's to read), in batches: memory is bounded by
librdkafka's capped prefetch and one batch, whatever the size of the range.

Producing is done as the service principal allowed to write the target topic
(replay/reprocess_plan.py), with acks=all and idempotence, as that service produces;
each record's delivery report is checked, and what Kafka refused is reported by tag.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from replay.errors import ReplayError
from replay.exit_codes import ExitCode
from sbp.settings import Settings

READER_GROUP = "sbp-replay-reader"
# Where a produced record came from (partition, offset), to report what Kafka refused.
Origin = tuple[int, int]
SCAN_BATCH = 500
# A scan that gets nothing for this long while records remain is stuck: the broker
# went away, or the records below the end were deleted under it.
SCAN_STALL_S = 30.0
DELIVERY_TIMEOUT_S = 60.0

_QUIET = logging.getLogger("replay.librdkafka.records")
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def scan(settings: Settings, topic: str, ranges: dict[int, tuple[int, int]]) -> Iterator[Message]:
    """Every record of `topic` with start <= offset < end, per partition {p: (start, end)},
    in offset order within each partition."""
    todo = {p: (s, e) for p, s_e in ranges.items() for s, e in [s_e] if s < e}
    if not todo:
        return
    config: dict[str, Any] = {
        **settings.kafka_config("admin"),
        "group.id": READER_GROUP,
        "client.id": READER_GROUP,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "queued.max.messages.kbytes": 16_384,
        "logger": _QUIET,
    }
    consumer = Consumer(config)
    try:
        consumer.assign([TopicPartition(topic, p, s) for p, (s, _e) in sorted(todo.items())])
        last_progress = time.monotonic()
        while todo:
            batch = consumer.consume(num_messages=SCAN_BATCH, timeout=1.0)
            if not batch and time.monotonic() - last_progress > SCAN_STALL_S:
                raise ReplayError(
                    ExitCode.KAFKA,
                    f"reading {topic} stalled with partitions {sorted(todo)} unfinished",
                )
            for msg in batch:
                partition = msg.partition()
                if partition is None or partition not in todo:
                    continue
                end = todo[partition][1]
                error = msg.error()
                if error is not None:
                    if error.code() != KafkaError._PARTITION_EOF:
                        raise ReplayError(ExitCode.KAFKA, f"reading {topic}: {error.str()}")
                    if (msg.offset() or 0) >= end:
                        del todo[partition]
                    continue
                last_progress = time.monotonic()
                offset = msg.offset() or 0
                if offset < end:
                    yield msg
                if offset >= end - 1:
                    del todo[partition]
    except KafkaException as exc:
        raise ReplayError(ExitCode.KAFKA, f"reading {topic}: {exc}") from None
    finally:
        consumer.close()


def headers_of(msg: Message) -> list[tuple[str, bytes | None]]:
    """A consumed record's headers in order, values as bytes."""
    raw: Any = msg.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else list(raw)
    return [(str(k), v.encode() if isinstance(v, str) else v) for k, v in pairs]


class Redriver:
    """Produces records as `principal`; remembers the tags of those Kafka refused."""

    def __init__(self, settings: Settings, principal: str) -> None:
        self._producer = Producer(
            {
                **settings.kafka_config(principal),
                "client.id": f"sbp-replay-{principal}",
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 20,
                "logger": _QUIET,
            }
        )
        self.refused: list[Origin] = []
        self.delivered = 0
        # Tags produced whose report has not come: bounded by the producer's queue.
        self._pending: set[Origin] = set()

    def produce(
        self,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        tag: Origin,
    ) -> None:
        def report(error: KafkaError | None, _msg: Message) -> None:
            self._pending.discard(tag)
            if error is None:
                self.delivered += 1
            else:
                self.refused.append(tag)

        wire_headers: list[tuple[str, str | bytes | None]] = list(headers)
        while True:
            try:
                self._producer.produce(
                    topic,
                    key=key,
                    value=value,
                    partition=partition,
                    headers=wire_headers,
                    on_delivery=report,
                )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
            except KafkaException:
                # Refused before it was queued (e.g. a partition the topic lacks): the
                # same as a refusal reported later.
                self.refused.append(tag)
                return
        self._pending.add(tag)
        self._producer.poll(0)

    def finish(self) -> list[Origin]:
        """Wait for every delivery report; the tags Kafka refused, and those whose report
        never came (they may have landed, so they are re-driven again rather than lost)."""
        self._producer.flush(DELIVERY_TIMEOUT_S)
        self.refused.extend(self._pending)
        self._pending.clear()
        return self.refused
