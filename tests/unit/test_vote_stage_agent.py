"""The vote stage's agent under faust's `agent.test_context()` (memory transport), with
real RocksDB databases for its state and a recording producer in place of Kafka.

It checks what one agent does per batch: emits, dead letters, the state it writes
(dedup entries, buckets, progress after the data), and its judgement of offsets
against its own progress.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import fastavro
import orjson
import pytest
import rocksdict
from confluent_kafka.schema_registry import SchemaRegistryClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Tracer

from sbp.settings import Settings
from sbp.tracing.provider import sampler
from schemas import catalog
from schemas.codec import AvroCodec, Writer
from streams.agents.vote_stage import VoteStage
from streams.app import create_app, raw_topic
from streams.batch_producer import DeliveryFailed
from streams.dlq import DeadLetters
from streams.partition_state import PartitionState
from streams.tables.comfort_buckets import zone_key
from streams.tables.live_buckets import LiveBuckets
from streams.tables.vote_batch import Horizons
from streams.tables.vote_state import bucket_state_key, dedup_state_key, progress_key
from streams.topics import VOTE_STATE_CHANGELOG, VOTES_ACCEPTED, VOTES_DLQ, VOTES_RAW

NOW = datetime(2026, 11, 25, 10, 0, 30, tzinfo=UTC)
ZONE = zone_key("acme", "hq", "3F")


Record = tuple[str, bytes | None, bytes | None, int | None]


class RecordingBatch:
    def __init__(
        self,
        produced: list[Record],
        confirmed: list[Record],
        headers: list[tuple[str, list[tuple[str, bytes | None]] | None]] | None = None,
    ) -> None:
        self.produced = produced
        self.log = confirmed
        self.headers = [] if headers is None else headers
        self.pending: list[Record] = []

    def produce(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None = None,
        headers: list[tuple[str, bytes | None]] | None = None,
    ) -> None:
        self.pending.append((topic, key, value, partition))
        self.produced.append((topic, key, value, partition))
        self.headers.append((topic, headers))

    async def confirm(self, timeout_s: float = 60.0) -> dict[tuple[str, int], int]:
        # "Delivered" in produce order, as an idempotent producer keeps it per partition.
        self.log.extend(self.pending)
        return {}


class RecordingProducer:
    def __init__(self) -> None:
        self.produced: list[Record] = []
        self.confirmed: list[Record] = []
        # (topic, headers) of every record produced, in produce order.
        self.headers: list[tuple[str, list[tuple[str, bytes | None]] | None]] = []

    def batch(self) -> RecordingBatch:
        return RecordingBatch(self.produced, self.confirmed, self.headers)

    def topic(
        self, name: str, log: list[Record] | None = None
    ) -> list[tuple[bytes | None, bytes | None, int | None]]:
        return [(k, v, p) for t, k, v, p in (self.confirmed if log is None else log) if t == name]


class OneWorkerConsumer:
    """Holds partition 0 only; the log starts at 0."""

    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []
        self.end = 1_000_000
        self.ready_after = 0.0  # a monotonic time; 0: ready from the start
        self.reassigning = False

    def ready(self) -> bool:
        return self.ready_after <= 0 or time.monotonic() >= self.ready_after

    def rebalancing(self) -> bool:
        return self.reassigning

    def held(self) -> set[int]:
        return {0}

    async def log_start(self, partition: int) -> int:
        return 0

    async def log_end(self, partition: int) -> int:
        return self.end

    async def seek(self, partition: int, offset: int) -> None:
        self.seeks.append((partition, offset))


def _codec() -> tuple[AvroCodec, dict[str, Writer]]:
    """The project codec with its schemas cached under made-up ids: no registry needed."""
    codec = AvroCodec(SchemaRegistryClient({"url": "http://127.0.0.1:9"}))
    writers = {}
    for schema_id, topic in enumerate((VOTES_RAW, VOTES_ACCEPTED, VOTES_DLQ), start=1):
        text = catalog.latest(catalog.value_subject(topic.name)).text
        parsed = fastavro.parse_schema(json.loads(text))
        codec._by_id[schema_id] = parsed
        writers[topic.name] = Writer(catalog.value_subject(topic.name), schema_id, parsed)
    return codec, writers


@pytest.fixture
def databases(tmp_path: Path) -> Iterator[dict[int, Any]]:
    options = rocksdict.Options(raw_mode=True)
    db = rocksdict.Rdict(str(tmp_path / "p0"), options=options)
    yield {0: db}
    db.close()


def raw(vote_uuid: str, value: int, minutes_ago: float = 1.0) -> dict[str, Any]:
    return {
        "tenantId": "acme",
        "userRef": "ref-1",
        "receivedAt": NOW,
        "late": False,
        "voteUuid": vote_uuid,
        "buildingId": "hq",
        "zoneId": "3F",
        "value": value,
        "clientTs": NOW - timedelta(minutes=minutes_ago),
        "schemaVersion": 2,
        "kind": "thermal",
    }


def uuid_of(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def _stage(
    tmp_path: Path,
    databases: dict[int, Any],
    consumer: OneWorkerConsumer,
    tracer: Tracer | None = None,
) -> tuple[RecordingProducer, VoteStage]:
    codec, writers = _codec()
    # Bound to the test's loop: faust would otherwise make (and never close) its own.
    app = create_app(
        Settings(state_dir=tmp_path),
        store="memory://",
        loop=asyncio.get_running_loop(),
    )
    producer = RecordingProducer()
    stage = VoteStage(
        app=app,
        consumer=consumer,
        state=PartitionState(lambda: databases, lambda _p, _o: None, VOTE_STATE_CHANGELOG.name),
        producer=producer,
        codec=codec,
        accepted_writer=writers[VOTES_ACCEPTED.name],
        dead_letters=DeadLetters(codec, writers[VOTES_DLQ.name], "sbp-worker"),
        live=LiveBuckets(),
        clock=lambda: NOW,
        horizons=Horizons(dedup_ttl_s=7 * 86400, live_bucket_ttl_s=65 * 60),
        tracer=tracer,
    )
    return producer, stage


async def _run(
    tmp_path: Path,
    databases: dict[int, Any],
    records: list[tuple[bytes, bytes]],
    consumer: OneWorkerConsumer | None = None,
    tracer: Tracer | None = None,
    headers: list[list[tuple[str, bytes]] | None] | None = None,
) -> tuple[RecordingProducer, OneWorkerConsumer, VoteStage]:
    """`headers`: each record's Kafka headers (none by default)."""
    consumer = consumer or OneWorkerConsumer()
    producer, stage = _stage(tmp_path, databases, consumer, tracer)
    agent = stage.install(raw_topic(stage.app, VOTES_RAW))
    # The keeper's first tick: the partition is taken on, at its progress (or log start).
    await stage.keep_partitions()
    async with agent.test_context() as test_agent:
        for index, (key, value) in enumerate(records):
            carried = headers[index] if headers else None
            await test_agent.put(value, key=key, partition=0, headers=carried, wait=False)
        # Every offset put is either processed (progress) or judged: wait for progress.
        for _ in range(200):
            # As the keeper does when records stop coming: finish the last batch.
            await stage.settle()
            progress = stage.state.get(0, progress_key(0))
            if progress is not None and orjson.loads(progress)["o"] == len(records) - 1:
                break
            await asyncio.sleep(0.02)
    # The stream made faust's Kafka consumer (never started: no broker is used); its
    # delegate thread's event loop is closed here, or it would leak.
    stage.app.consumer._thread.loop.close()  # type: ignore[attr-defined]
    return producer, consumer, stage


async def test_a_batch_emits_dedups_buckets_and_records_progress_last(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    codec, writers = _codec()
    w = writers[VOTES_RAW.name]
    votes = [raw(uuid_of(1), 2), raw(uuid_of(2), -1), raw(uuid_of(1), 2), raw(uuid_of(3), 3)]
    records = [(ZONE.encode(), codec.encode(w, v)) for v in votes]
    records.append((b"acme|hq|other", codec.encode(w, raw(uuid_of(4), 1))))  # wrong key
    records.append((ZONE.encode(), b"not avro"))

    producer, consumer, stage = await _run(tmp_path, databases, records)

    emitted = [
        str(codec.decode(v).record["voteUuid"]) for _k, v, _p in producer.topic("votes.accepted")
    ]
    assert emitted == [uuid_of(1), uuid_of(2), uuid_of(3)]
    letters = [codec.decode(v).record for _k, v, _p in producer.topic("votes.dlq")]
    assert [(d["originalOffset"], d["errorCode"]) for d in letters] == [
        (4, "wrong_key"),
        (5, "not_avro_framed"),
    ]
    # State: one dedup entry per vote at its first offset, one bucket with three votes.
    db = databases[0]
    assert orjson.loads(db[dedup_state_key("acme", uuid_of(1))])["o"] == 0
    minute = int((NOW - timedelta(minutes=1)).timestamp()) // 60
    bucket = orjson.loads(db[bucket_state_key(ZONE, "thermal", minute)])
    assert bucket["v"] == {"2": 1, "-1": 1, "3": 1}
    assert bucket["h"] == 3
    # The progress marker is produced last, after the data it guards was confirmed,
    # to the same changelog partition.
    changelog = producer.topic(VOTE_STATE_CHANGELOG.name, producer.produced)
    assert changelog[-1][0] == progress_key(0)
    assert orjson.loads(changelog[-1][1] or b"{}") == {"o": 5}
    assert all(key != progress_key(0) for key, _v, _p in producer.topic(VOTE_STATE_CHANGELOG.name))
    assert {p for _k, _v, p in changelog} == {0}
    assert stage.stats.counts["duplicate"] == 1
    # Never processed: started at the log start, where faust resumed too, so no seek.
    assert consumer.seeks == []


async def test_records_below_the_progress_are_skipped_and_a_gap_is_sought_back(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    codec, writers = _codec()
    w = writers[VOTES_RAW.name]
    # The partition's durable progress says offsets 0..1 are done.
    databases[0][progress_key(0)] = b'{"o":1}'
    records = [(ZONE.encode(), codec.encode(w, raw(uuid_of(n), 1))) for n in range(4)]

    producer, consumer, stage = await _run(tmp_path, databases, records)

    emitted = [
        str(codec.decode(v).record["voteUuid"]) for _k, v, _p in producer.topic("votes.accepted")
    ]
    assert emitted == [uuid_of(2), uuid_of(3)]
    assert stage.stats.counts["skipped_skip"] == 2
    # Read from below its progress: the records reach the expected offset, no seek.
    assert consumer.seeks == []


@pytest.mark.parametrize(("log_end", "seeks"), [(1_000_000, [(0, 6)]), (6, [])])
async def test_a_quiet_partition_is_sought_only_if_records_past_its_progress_exist(
    tmp_path: Path, databases: dict[int, Any], log_end: int, seeks: list[tuple[int, int]]
) -> None:
    databases[0][progress_key(0)] = b'{"o":5}'
    consumer = OneWorkerConsumer()
    consumer.end = log_end
    _producer, stage = _stage(tmp_path, databases, consumer)

    await stage.keep_partitions()
    assert consumer.seeks == []  # taken on without a seek
    await stage.keep_partitions()
    assert consumer.seeks == []  # the patience has not passed
    stage.cursors[0].quiet_deadline = 0.0  # it has now, and no record came
    await stage.keep_partitions()
    assert consumer.seeks == seeks
    await stage.keep_partitions()
    assert consumer.seeks == seeks  # checked once per assignment
    stage.app.consumer._thread.loop.close()  # type: ignore[attr-defined]


def _votes(n: int) -> list[tuple[bytes, bytes]]:
    codec, writers = _codec()
    return [
        (ZONE.encode(), codec.encode(writers[VOTES_RAW.name], raw(uuid_of(i), 1))) for i in range(n)
    ]


async def test_a_batch_that_comes_during_recovery_waits_for_it_instead_of_leaving_a_gap(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    records = _votes(3)
    consumer = OneWorkerConsumer()
    consumer.ready_after = time.monotonic() + 0.3  # faust still restoring the state

    producer, consumer, stage = await _run(tmp_path, databases, records, consumer)

    assert len(producer.topic("votes.accepted")) == 3
    assert stage.stats.counts["deferred_not_ready"] == 0
    assert stage.stats.counts["held_for_recovery"] >= 1
    assert consumer.seeks == []


async def test_a_batch_that_comes_during_a_rebalance_is_deferred_at_once(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    records = _votes(3)
    consumer = OneWorkerConsumer()
    consumer.ready_after = time.monotonic() + 3600
    consumer.reassigning = True

    producer, consumer, stage = await _run(tmp_path, databases, records, consumer)

    assert producer.topic("votes.accepted") == []
    assert stage.stats.counts["deferred_not_ready"] == 3
    assert stage.state.get(0, progress_key(0)) is None


class RefusedBatch(RecordingBatch):
    async def confirm(self, timeout_s: float = 60.0) -> dict[tuple[str, int], int]:
        raise DeliveryFailed("Broker: Not enough in-sync replicas")


async def test_a_refused_batch_stops_the_process_before_any_progress_past_it(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    stops: list[tuple[int, BaseException | None]] = []
    consumer = OneWorkerConsumer()
    producer, stage = _stage(tmp_path, databases, consumer)
    stage._fail_stop = lambda n, exc: stops.append((n, exc))
    refused = RefusedBatch(producer.produced, producer.confirmed)
    later = producer.batch()
    # Two batches in flight, the older one refused by Kafka.
    stage._in_flight.extend([(refused, {0: 10}), (later, {0: 20})])

    with pytest.raises(DeliveryFailed):
        await stage.settle()

    assert len(stops) == 1 and isinstance(stops[0][1], DeliveryFailed)
    assert stage.state.get(0, progress_key(0)) is None
    assert producer.topic(VOTE_STATE_CHANGELOG.name, producer.produced) == []


async def test_in_flight_batches_record_progress_in_order(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    consumer = OneWorkerConsumer()
    producer, stage = _stage(tmp_path, databases, consumer)
    stage._in_flight.extend([(producer.batch(), {0: 10}), (producer.batch(), {0: 20})])

    await stage.settle(keep=1)
    assert orjson.loads(stage.state.get(0, progress_key(0)) or b"{}") == {"o": 10}
    await stage.settle()
    assert orjson.loads(stage.state.get(0, progress_key(0)) or b"{}") == {"o": 20}
    marks = [v for k, v, _p in producer.topic(VOTE_STATE_CHANGELOG.name, producer.produced)]
    assert marks == [b'{"o":10}', b'{"o":20}']


async def test_a_re_driven_record_that_fails_again_is_dead_lettered_with_one_attempt_more(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    # What `sbp replay dlq reprocess` produces: the original bytes and headers, with
    # the attempts the letter had used so far.
    consumer = OneWorkerConsumer()
    producer, stage = _stage(tmp_path, databases, consumer)
    agent = stage.install(raw_topic(stage.app, VOTES_RAW))
    await stage.keep_partitions()
    headers = [("traceparent", b"00-abc-def-01"), ("sbp-dlq-attempts", b"2")]
    async with agent.test_context() as test_agent:
        await test_agent.put(b"not avro", key=ZONE.encode(), partition=0, headers=headers)
        await test_agent.put(b"still not", key=ZONE.encode(), partition=0)
        for _ in range(200):
            await stage.settle()
            if stage.state.get(0, progress_key(0)) is not None:
                break
            await asyncio.sleep(0.02)
    stage.app.consumer._thread.loop.close()  # type: ignore[attr-defined]

    codec, _writers = _codec()
    letters = [codec.decode(v).record for _k, v, _p in producer.topic("votes.dlq")]
    assert [(d["errorCode"], d["attempts"]) for d in letters] == [
        ("not_avro_framed", 3),
        ("not_avro_framed", 1),
    ]
    assert [(h["key"], h["value"]) for h in letters[0]["originalHeaders"]] == headers


async def test_accepted_votes_carry_their_own_gateway_batchs_trace(
    tmp_path: Path, databases: dict[int, Any]
) -> None:
    codec, writers = _codec()
    w = writers[VOTES_RAW.name]
    exporter = InMemorySpanExporter()
    provider = TracerProvider(sampler=sampler(1.0, edge=False))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    gateway_a = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331")
    gateway_b = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7")
    a = [("traceparent", f"00-{gateway_a[0]}-{gateway_a[1]}-01".encode())]
    b = [("traceparent", f"00-{gateway_b[0]}-{gateway_b[1]}-01".encode())]
    votes = [raw(uuid_of(1), 1), raw(uuid_of(2), 2), raw(uuid_of(1), 1), raw(uuid_of(3), 3)]
    records = [(ZONE.encode(), codec.encode(w, v)) for v in votes]
    # Two gateway batches (the third record re-sends the first vote) and one untraced record.
    carried: list[list[tuple[str, bytes]] | None] = [a, b, a, None]

    producer, _consumer, _stage = await _run(
        tmp_path, databases, records, tracer=provider.get_tracer("t"), headers=carried
    )

    spans = {f"{s.context.span_id:016x}": s for s in exporter.get_finished_spans() if s.context}
    assert {s.name for s in spans.values()} == {"process votes.raw"}
    emitted = [
        (str(codec.decode(v).record["voteUuid"]), h)
        for (topic, _k, v, _p), (_t, h) in zip(producer.produced, producer.headers, strict=True)
        if topic == VOTES_ACCEPTED.name
    ]
    assert [uuid for uuid, _h in emitted] == [uuid_of(1), uuid_of(2), uuid_of(3)]
    traces = []
    for _uuid, headers in emitted[:2]:
        traceparent = dict(headers or [])["traceparent"]
        assert traceparent is not None
        _version, trace_id, span_id, _flags = traceparent.decode().split("-")
        stage_span = spans[span_id]
        assert stage_span.parent is not None
        traces.append((trace_id, f"{stage_span.parent.span_id:016x}"))
    # Each emit continues its own record's trace, through a stage span under its gateway span.
    assert traces == [gateway_a, gateway_b]
    assert emitted[2][1] is None  # an untraced vote stays untraced
    # Only accepted votes carry a trace: state and progress records do not.
    assert all(h is None for t, h in producer.headers if t != VOTES_ACCEPTED.name)
