"""The PostgreSQL sink as its own consumer of votes.accepted (issue 6, Build 4).

Accepted votes are produced straight onto votes.accepted, as the vote stage
emits them, so these tests exercise the sink alone. "The sink is past a
record" is read from its consumer group's committed offsets: the sink commits
only after the rows are durable, so the rows asserted afterwards were not
waited for, they are the claim under test.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from confluent_kafka import Consumer, KafkaError, Message, Producer, TopicPartition

from devstack import postgres
from devstack.python_services import SINK
from devstack.raw_votes import raw_vote
from sbp.settings import REPO_ROOT, Settings
from schemas import catalog
from schemas.codec import AvroCodec, registry_client
from streams.topics import PG_SINK_GROUP, VOTES_ACCEPTED, VOTES_DLQ
from tests.integration.conftest import Tenant
from tests.integration.observe import (
    decode,
    end_offsets,
    read_new_records,
    vote_count,
    vote_rows,
    wait_for,
)

ACCEPTED_SUBJECT = catalog.value_subject(VOTES_ACCEPTED.name)
Written = list[tuple[int, int]]  # (partition, offset) per produced record, in order


def accepted_vote(tenant: Tenant, zone: str, value: int, kind: str = "thermal") -> dict[str, Any]:
    """A votes.accepted record: the v2 vote with the gateway's envelope, as the vote stage emits."""
    vote = raw_vote(tenant.tenant_id, tenant.building_id, zone, value=value, kind=kind)
    del vote["schemaVersion"]
    vote["sourceSchemaVersion"] = 2
    return vote


def expected_rows(votes: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """What `observe.vote_rows` must read back for these votes."""
    return sorted(
        (str(v["voteUuid"]), v["zoneId"], v["kind"], v["value"], v["late"], 2) for v in votes
    )


class AcceptedProducer:
    """Encodes with the newest votes.accepted schema and reports where each record landed."""

    def __init__(self, settings: Settings) -> None:
        with registry_client(settings) as client:
            self.codec = AvroCodec(client)
            self.writer = self.codec.writer(ACCEPTED_SUBJECT, catalog.latest(ACCEPTED_SUBJECT).text)
        # As the vote stage's principal: the only one allowed to write votes.accepted.
        self._producer = Producer(
            {
                **settings.kafka_config("worker"),
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",
            }
        )

    def encode(self, vote: dict[str, Any]) -> tuple[bytes, bytes]:
        key = f"{vote['tenantId']}|{vote['buildingId']}|{vote['zoneId']}".encode()
        return key, self.codec.encode(self.writer, vote)

    def produce(self, records: list[tuple[bytes, bytes]]) -> Written:
        landed: dict[int, tuple[int, int]] = {}
        errors: list[str] = []

        def report(index: int) -> Any:
            def on_delivery(err: KafkaError | None, msg: Message) -> None:
                if err is not None:
                    errors.append(str(err))
                else:
                    landed[index] = (msg.partition() or 0, msg.offset() or 0)

            return on_delivery

        for index, (key, value) in enumerate(records):
            while True:
                try:
                    self._producer.produce(
                        VOTES_ACCEPTED.name, key=key, value=value, on_delivery=report(index)
                    )
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    self._producer.poll(0.05)
        assert self._producer.flush(60) == 0, "records not confirmed by Kafka"
        assert not errors, errors
        return [landed[i] for i in range(len(records))]


def sink_committed(settings: Settings) -> dict[int, int]:
    """The sink group's committed offset per partition (a reader, never a group member)."""
    consumer = Consumer(
        {
            **settings.kafka_config("admin"),
            "group.id": PG_SINK_GROUP,
            "enable.auto.commit": False,
        }
    )
    try:
        asked = [TopicPartition(VOTES_ACCEPTED.name, p) for p in range(VOTES_ACCEPTED.partitions)]
        return {tp.partition: tp.offset for tp in consumer.committed(asked, timeout=10)}
    finally:
        consumer.close()


def sink_is_past(settings: Settings, written: Written) -> bool:
    committed = sink_committed(settings)
    return all(committed.get(p, -1) > offset for p, offset in written)


def sink_stats(settings: Settings) -> dict[str, Any]:
    url = f"http://{settings.host}:{settings.sink_web_port}/stats"
    stats: dict[str, Any] = httpx.get(url, timeout=5).json()
    return stats


def sink_ready_status(settings: Settings) -> int:
    url = f"http://{settings.host}:{settings.sink_web_port}/ready"
    return httpx.get(url, timeout=5).status_code


@pytest.fixture
def sink(stack: Settings) -> Settings:
    """The stack's sink, started again if an earlier test stopped it."""
    SINK.up(stack)
    return stack


@pytest.fixture
def restore_postgres(sink: Settings) -> Iterator[None]:
    """PostgreSQL is started again even when the test fails, and the sink is ready again."""
    yield
    postgres.up(sink)
    wait_for(lambda: sink_ready_status(sink) == 200, 60, "the sink ready again")


def test_accepted_votes_are_stored_exactly_once_and_a_replay_changes_nothing(
    tenant: Tenant, sink: Settings
) -> None:
    settings = sink
    votes = [
        accepted_vote(tenant, tenant.zones[i % 4], value=(i % 5) + 1, kind="air")
        for i in range(300)
    ]
    producer = AcceptedProducer(settings)
    records = [producer.encode(v) for v in votes]

    written = producer.produce(records)
    wait_for(lambda: sink_is_past(settings, written), 60, "the sink committed past the votes")
    assert vote_rows(settings, tenant.tenant_id) == expected_rows(votes)

    replayed_before = sink_stats(settings)["replayed"]
    again = producer.produce(records)
    wait_for(lambda: sink_is_past(settings, again), 60, "the sink committed past the replay")
    assert vote_rows(settings, tenant.tenant_id) == expected_rows(votes)
    assert sink_stats(settings)["replayed"] >= replayed_before + len(votes)


def stop_sink_mid_backlog(
    settings: Settings, tenant: Tenant, votes: list[dict[str, Any]], sig: signal.Signals
) -> None:
    """Produce `votes`, signal the sink once it has stored some of them, start it again,
    and return once it has committed past them all."""
    producer = AcceptedProducer(settings)
    stored_before = vote_count(settings, tenant.tenant_id)
    written = producer.produce([producer.encode(v) for v in votes])
    wait_for(
        lambda: vote_count(settings, tenant.tenant_id) > stored_before,
        60,
        "the sink storing the backlog",
    )
    SINK.process(settings).stop(sig=sig)
    assert not sink_is_past(settings, written), f"the backlog was done before {sig.name}"
    SINK.up(settings)
    wait_for(lambda: sink_is_past(settings, written), 120, f"the backlog after {sig.name}")


def test_a_sink_killed_or_stopped_mid_backlog_stores_every_vote_once(
    tenant: Tenant, sink: Settings
) -> None:
    def backlog() -> list[dict[str, Any]]:
        return [
            accepted_vote(tenant, tenant.zones[i % 4], value=(i % 5) + 1, kind="light")
            for i in range(30_000)
        ]

    # SIGKILL: rows written but not yet committed are read again, a no-op.
    killed = backlog()
    stop_sink_mid_backlog(sink, tenant, killed, signal.SIGKILL)
    assert vote_rows(sink, tenant.tenant_id) == expected_rows(killed)
    # SIGTERM: the current batch is finished and committed, then the sink exits.
    stopped = backlog()
    stop_sink_mid_backlog(sink, tenant, stopped, signal.SIGTERM)
    assert vote_rows(sink, tenant.tenant_id) == expected_rows(killed + stopped)


def test_postgres_outage_delays_history_and_loses_nothing(
    tenant: Tenant, sink: Settings, restore_postgres: None
) -> None:
    settings = sink
    # The registry keeps its schemas in PostgreSQL: look the writer up before the outage.
    producer = AcceptedProducer(settings)
    first = [accepted_vote(tenant, "z1", value=3)]
    written = producer.produce([producer.encode(v) for v in first])
    wait_for(lambda: sink_is_past(settings, written), 60, "the first vote stored")
    retries_before = sink_stats(settings)["retries"]

    postgres.down(settings)
    during = [accepted_vote(tenant, tenant.zones[i % 4], value=(i % 7) - 3) for i in range(200)]
    written = producer.produce([producer.encode(v) for v in during])
    # Several attempts: the first meets the closed connection, the next ones a refused connect.
    wait_for(
        lambda: sink_stats(settings)["retries"] >= retries_before + 3,
        60,
        "the sink retrying its batch",
    )
    wait_for(lambda: sink_ready_status(settings) == 503, 30, "the sink unready while it waits")
    # Delayed, not skipped: nothing from the first of these records on is committed.
    committed = sink_committed(settings)
    first_offsets: dict[int, int] = {}
    for partition, offset in written:
        first_offsets.setdefault(partition, offset)
    assert all(committed.get(p, -1) <= offset for p, offset in first_offsets.items())

    postgres.up(settings)
    wait_for(lambda: sink_is_past(settings, written), 120, "the sink past the votes after recovery")
    assert vote_rows(settings, tenant.tenant_id) == expected_rows(first + during)
    assert sink_stats(settings)["retries"] > retries_before


def test_poison_records_are_dead_lettered_and_later_votes_are_stored(
    tenant: Tenant, sink: Settings
) -> None:
    settings = sink
    producer = AcceptedProducer(settings)
    before = [accepted_vote(tenant, "z2", value=v) for v in (-3, 0, 3)]
    after = [accepted_vote(tenant, "z2", value=v) for v in (-1, 1, 2)]
    key, good_value = producer.encode(before[0])
    corrupt = (key, good_value[:5] + b"\xff\xff\xff\xff")  # our schema id, a garbage body
    unframed = (key, b"{'not': 'avro'}")
    # Decodes fine, but PostgreSQL's CHECK on kind refuses it.
    refused = producer.encode(accepted_vote(tenant, "z2", value=1, kind="sleepiness"))
    # Decodes fine, but a text column cannot hold a NUL byte.
    with_nul = accepted_vote(tenant, "z2", value=2)
    with_nul["deviceId"] = "phone\x00"
    unsendable = producer.encode(with_nul)
    # Decodes fine, but its tenant was never created, so it has no schema to go to.
    stranger = Tenant(settings, f"t-{uuid.uuid4().hex[:12]}", "b1", ("z1",))
    homeless = producer.encode(accepted_vote(stranger, "z1", value=1))
    dlq_before = end_offsets(settings, VOTES_DLQ.name)

    records = [
        *(producer.encode(v) for v in before),
        corrupt,
        unframed,
        refused,
        unsendable,
        homeless,
        *(producer.encode(v) for v in after),
    ]
    written = producer.produce(records)
    wait_for(lambda: sink_is_past(settings, written), 60, "the sink committed past the batch")
    assert vote_rows(settings, tenant.tenant_id) == expected_rows(before + after)

    poison = {
        written[3]: "undecodable",
        written[4]: "not_avro_framed",
        written[5]: "db_rejected",
        written[6]: "db_rejected",
        written[7]: "unknown_tenant",
    }

    def ours(records: list[Any]) -> dict[tuple[int, int], dict[str, Any]]:
        found = {}
        for record in records:
            letter = decode(settings, record.value())
            where = (letter["originalPartition"], letter["originalOffset"])
            if letter["consumerGroup"] == PG_SINK_GROUP and where in poison:
                found[where] = letter
        return found

    letters = ours(
        read_new_records(
            settings, VOTES_DLQ.name, dlq_before, lambda rs: len(ours(rs)) == len(poison)
        )
    )
    assert {where: letter["errorCode"] for where, letter in letters.items()} == poison
    assert letters[written[3]]["originalValue"] == corrupt[1]
    assert letters[written[5]]["originalKey"] == refused[0]
    assert "23514" in letters[written[5]]["errorMessage"]
    assert "NUL" in letters[written[6]]["errorMessage"]
    assert stranger.tenant_id in letters[written[7]]["errorMessage"]


def test_a_permanent_database_error_stops_the_sink_at_once(sink: Settings) -> None:
    # A second sink with a wrong password: it must refuse to start, not retry
    # forever. It stops before it joins the group, so the real sink is untouched.
    env = {
        **os.environ,
        "SBP_PG_SINK_PASSWORD": f"wrong-{uuid.uuid4().hex[:8]}",
        "SBP_SINK_WEB_PORT": "0",  # any free port: the stack's sink holds the real one
    }
    done = subprocess.run(
        [sys.executable, "-m", "sinks.timescale.sink_worker"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78, done.stderr[-2000:]
    critical = [line for line in done.stderr.splitlines() if " CRITICAL " in line]
    assert len(critical) == 1, done.stderr[-2000:]
    assert "password authentication failed" in critical[0]
    assert sink_ready_status(sink) == 200
