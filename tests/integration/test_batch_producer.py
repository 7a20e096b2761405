"""The batch producer against the real broker: every report of a batch awaited at once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from sbp.settings import Settings
from streams.batch_producer import BatchProducer, DeliveryFailed


@pytest.fixture
def scratch_topic(stack: Settings) -> Iterator[str]:
    admin = AdminClient({**stack.kafka_config("admin")})
    name = f"test.batch-producer-{uuid.uuid4().hex[:8]}"
    for future in admin.create_topics([NewTopic(name, 4, 1)]).values():
        future.result(30)
    yield name
    for future in admin.delete_topics([name]).values():
        future.result(30)


@pytest.fixture
def producer(stack: Settings) -> Iterator[BatchProducer]:
    producer = BatchProducer(stack.kafka_config("admin"), client_id="test-batch-producer")
    yield producer
    producer.close()


def _end_offsets(settings: Settings, topic: str) -> list[int]:
    consumer = Consumer({**settings.kafka_config("admin"), "group.id": "unused"})
    try:
        return [
            consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(4)
        ]
    finally:
        consumer.close()


async def test_confirm_returns_once_every_record_is_in_the_log(
    stack: Settings, scratch_topic: str, producer: BatchProducer
) -> None:
    batch = producer.batch()
    for n in range(5000):
        batch.produce(scratch_topic, b"k%d" % n, b"v", partition=n % 4)
    batch.produce(scratch_topic, b"h", b"v", partition=0, headers=[("why", b"test")])
    offsets = await batch.confirm()
    # Partition 0 got 1250 + 1 records: offsets 0..1250.
    assert offsets == {
        (scratch_topic, 0): 1250,
        (scratch_topic, 1): 1249,
        (scratch_topic, 2): 1249,
        (scratch_topic, 3): 1249,
    }
    assert _end_offsets(stack, scratch_topic) == [1251, 1250, 1250, 1250]
    # An empty batch confirms at once; a confirmed one takes no more records.
    assert await producer.batch().confirm() == {}
    with pytest.raises(RuntimeError, match="already confirmed"):
        batch.produce(scratch_topic, b"k", b"v")


async def test_a_record_the_broker_refuses_fails_its_whole_batch(
    scratch_topic: str, producer: BatchProducer
) -> None:
    batch = producer.batch()
    batch.produce(scratch_topic, b"k", b"v", partition=1)
    batch.produce(scratch_topic, b"k", b"v", partition=9)  # the topic has 4
    with pytest.raises(DeliveryFailed, match=r"Unknown partition|UNKNOWN_PARTITION"):
        await batch.confirm(timeout_s=30)
