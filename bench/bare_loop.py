"""The floor for the vote stage: a bare confluent-kafka loop over a span of votes.raw.

It does the stage's essential per-vote work and nothing else: consume,
decode with the one Avro codec, migrate to v2 terms (the same pure function
the stage uses, needed to build an accepted record), drop duplicates with an
in-memory dict keyed `tenantId|voteUuid`, encode as votes.accepted with the
registered writer, and produce to a scratch topic with acks=all and
idempotence, flushing at the end. No state store, no changelog, no live
buckets, no crash safety: what is left when every guarantee is taken away.

The span is given as per-partition [start, end) offsets, read with `assign`
under a group of its own that never commits, so the stage's group and offsets
are untouched. The scratch topic is created for the run and deleted after.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from sbp.settings import Settings
from schemas import catalog
from schemas.codec import AvroCodec, Writer, registry_client
from streams.tables.vote_migration import Invalid, migrate
from streams.topics import VOTES_ACCEPTED, VOTES_RAW

SCRATCH_TOPIC = "bench.bare-accepted"
# Offsets per partition: [start, end).
Span = Mapping[int, tuple[int, int]]


@dataclass(frozen=True)
class BareResult:
    read: int
    emitted: int
    duplicates: int
    invalid: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.read / self.seconds if self.seconds > 0 else 0.0


def end_offsets(settings: Settings, topic: str = VOTES_RAW.name) -> dict[int, int]:
    """Each partition's high watermark (the offset the next record will get)."""
    consumer = Consumer({**settings.kafka_config("admin"), "group.id": "bench-watermarks"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        return {
            p: int(consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1])
            for p in sorted(partitions)
        }
    finally:
        consumer.close()


def span_between(before: Mapping[int, int], after: Mapping[int, int]) -> dict[int, tuple[int, int]]:
    return {p: (before.get(p, 0), end) for p, end in after.items() if end > before.get(p, 0)}


def span_size(span: Span) -> int:
    return sum(end - start for start, end in span.values())


@contextmanager
def scratch_topic(settings: Settings, name: str = SCRATCH_TOPIC) -> Iterator[str]:
    """A topic shaped like votes.accepted for one run; deleted afterwards, whatever happens."""
    admin = AdminClient({**settings.kafka_config("admin")})
    if name in admin.list_topics(timeout=10).topics:
        _delete(admin, name)  # left by an interrupted run
    spec = NewTopic(
        name,
        num_partitions=VOTES_ACCEPTED.partitions,
        replication_factor=settings.kafka_replication_factor,
    )
    for future in admin.create_topics([spec]).values():
        future.result(timeout=30)
    _wait_for_topic(admin, name, present=True)
    try:
        yield name
    finally:
        _delete(admin, name)


def _delete(admin: AdminClient, name: str) -> None:
    for future in admin.delete_topics([name]).values():
        try:
            future.result(timeout=30)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                raise
    _wait_for_topic(admin, name, present=False)


def _wait_for_topic(admin: AdminClient, name: str, *, present: bool, limit_s: float = 30) -> None:
    deadline = time.monotonic() + limit_s
    while (name in admin.list_topics(timeout=10).topics) != present:
        if time.monotonic() > deadline:
            raise RuntimeError(f"topic {name} still {'absent' if present else 'present'}")
        time.sleep(0.2)


class _Deliveries:
    def __init__(self) -> None:
        self.failed = 0

    def __call__(self, err: KafkaError | None, _msg: Message) -> None:
        if err is not None:
            self.failed += 1


def run_bare_loop(settings: Settings, span: Span, out_topic: str) -> BareResult:
    """Process every record of `span` once; the clock runs from assign to the final flush."""
    codec = AvroCodec(registry_client(settings))
    raw_subject = catalog.value_subject(VOTES_RAW.name)
    codec.writer(raw_subject, catalog.latest(raw_subject).text)  # cache the raw writer's id
    accepted_subject = catalog.value_subject(VOTES_ACCEPTED.name)
    writer = codec.writer(accepted_subject, catalog.latest(accepted_subject).text)
    deliveries = _Deliveries()
    producer = Producer(
        {
            **settings.kafka_config("admin"),
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 5,
            "partitioner": "murmur2_random",
            "on_delivery": deliveries,
        }
    )
    consumer = Consumer(
        {
            **settings.kafka_config("admin"),
            "group.id": f"bench-bare-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    ends = {p: end for p, (_start, end) in span.items()}
    seen: dict[str, None] = {}
    read = emitted = duplicates = invalid = 0
    try:
        started = time.perf_counter()
        consumer.assign([TopicPartition(VOTES_RAW.name, p, s) for p, (s, _e) in span.items()])
        while ends:
            for message in consumer.consume(num_messages=1000, timeout=1.0):
                if message.error() is not None:
                    raise KafkaException(message.error())
                partition, offset = message.partition() or 0, message.offset() or 0
                end = ends.get(partition)
                if end is None or offset >= end:
                    continue  # past the span: records produced after it was taken
                read += 1
                if offset == end - 1:
                    del ends[partition]
                emitted_now, duplicate = _process(codec, writer, seen, producer, out_topic, message)
                emitted += emitted_now
                duplicates += duplicate
                invalid += 1 - emitted_now - duplicate
            producer.poll(0)
        left = producer.flush(120)
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    if left or deliveries.failed:
        raise RuntimeError(f"bare loop: {left} unconfirmed, {deliveries.failed} failed deliveries")
    return BareResult(read, emitted, duplicates, invalid, seconds)


def _process(
    codec: AvroCodec,
    writer: Writer,
    seen: dict[str, None],
    producer: Producer,
    topic: str,
    message: Message,
) -> tuple[int, int]:
    """(1, 0) emitted, (0, 1) duplicate, (0, 0) invalid."""
    vote = migrate(codec.decode(message.value()).record)
    if isinstance(vote, Invalid):
        return 0, 0
    dedup_key = f"{vote['tenantId']}|{vote['voteUuid']}"
    if dedup_key in seen:
        return 0, 1
    seen[dedup_key] = None
    value = codec.encode(writer, vote)
    while True:
        try:
            producer.produce(topic, key=message.key(), value=value)
            return 1, 0
        except BufferError:  # the local queue is full: let deliveries drain it
            producer.poll(0.05)
