"""Raw votes produced straight onto votes.raw, as the gateway would: for tests, the
crash drill and the benchmarks, which need volume or records the gateway refuses.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from types import TracebackType
from typing import Any

from confluent_kafka import Producer

from sbp.settings import Settings
from schemas import catalog
from schemas.codec import AvroCodec, Writer, registry_client
from streams.tables.comfort_buckets import zone_key
from streams.topics import VOTES_RAW

RAW_SUBJECT = catalog.value_subject(VOTES_RAW.name)


def raw_vote(
    tenant_id: str,
    building_id: str,
    zone_id: str,
    *,
    value: int,
    kind: str = "thermal",
    user_ref: str = "ref-1",
    client_ts: datetime | None = None,
    received_at: datetime | None = None,
    vote_uuid: str | None = None,
) -> dict[str, Any]:
    """A v2 votes.raw record with the gateway's envelope."""
    now = datetime.now(UTC)
    return {
        "tenantId": tenant_id,
        "userRef": user_ref,
        "receivedAt": received_at or now,
        "late": False,
        "voteUuid": vote_uuid or str(uuid.uuid4()),
        "buildingId": building_id,
        "zoneId": zone_id,
        "value": value,
        "clientTs": client_ts or now,
        "schemaVersion": 2,
        "kind": kind,
    }


KINDS = ("thermal", "air", "noise", "light")


def random_raw_votes(
    tenant_id: str,
    building_id: str,
    zones: tuple[str, ...],
    count: int,
    *,
    seed: int,
    now: datetime,
    spread_s: int,
    voters: int = 400,
) -> list[dict[str, Any]]:
    """`count` reproducible votes over every kind, with clientTs up to `spread_s` back."""
    rng = random.Random(seed)
    votes = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        votes.append(
            raw_vote(
                tenant_id,
                building_id,
                rng.choice(zones),
                kind=kind,
                value=rng.randint(-3, 3) if kind == "thermal" else rng.randint(1, 5),
                user_ref=f"ref-{rng.randint(1, voters)}",
                client_ts=now - timedelta(seconds=rng.randint(0, spread_s)),
                received_at=now,
                vote_uuid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
            )
        )
    return votes


class RawVoteProducer:
    """Encodes with the newest votes.raw schema and produces with acks=all, as the
    gateway's principal: the only one allowed to write votes.raw."""

    def __init__(self, settings: Settings) -> None:
        with registry_client(settings) as client:
            self.codec = AvroCodec(client)
            self.writer: Writer = self.codec.writer(RAW_SUBJECT, catalog.latest(RAW_SUBJECT).text)
        self._producer = Producer(
            {
                **settings.kafka_config("gateway"),
                "acks": "all",
                "enable.idempotence": True,
                "partitioner": "murmur2_random",  # as the gateway
                "linger.ms": 20,
            }
        )

    def encode(self, vote: dict[str, Any]) -> tuple[bytes, bytes]:
        key = zone_key(vote["tenantId"], vote["buildingId"], vote["zoneId"]).encode()
        return key, self.codec.encode(self.writer, vote)

    def produce(self, votes: Iterable[dict[str, Any]]) -> None:
        for vote in votes:
            key, value = self.encode(vote)
            self.produce_bytes(key, value)

    def produce_bytes(
        self,
        key: bytes,
        value: bytes,
        partition: int | None = None,
        headers: list[tuple[str, str | bytes | None]] | None = None,
    ) -> None:
        """`headers`: e.g. a gateway batch's trace context (bench/pipeline_throughput.py)."""
        while True:
            try:
                if partition is None:
                    self._producer.produce(VOTES_RAW.name, key=key, value=value, headers=headers)
                else:
                    self._producer.produce(
                        VOTES_RAW.name, key=key, value=value, partition=partition, headers=headers
                    )
                break
            except BufferError:  # the local queue is full: let deliveries drain it
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 60.0) -> None:
        left = self._producer.flush(timeout)
        if left:
            raise RuntimeError(f"{left} raw votes not confirmed by Kafka in {timeout}s")

    def __enter__(self) -> RawVoteProducer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is None:
            self.flush()
