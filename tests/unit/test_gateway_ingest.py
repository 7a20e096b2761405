"""The ingest step: zone keys, the claim across zones, marks only for what Kafka confirmed.

The publisher and the mark store are in-memory stand-ins (the publisher is
the gateway's transport interface; the store keeps marks in a dict), so this
checks the ingest logic alone. Redis and Kafka themselves are exercised by
the integration tests and bench/gateway_ingest.py.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import fastavro
from confluent_kafka.schema_registry import SchemaRegistryClient

from gateway.clock_skew import SkewPolicy
from gateway.mark_store import MarkStore
from gateway.publisher import OutboundRecord
from gateway.vote_ingest import IngestContext, ingest
from gateway.vote_validation import ItemOutcome
from gateway.zone_directory import TenantZones
from identity.keyring import LocalKeyring
from identity.principal import Principal, Role
from schemas import catalog
from schemas.codec import AvroCodec, Writer
from streams.topics import VOTES_RAW

TENANT = "acme"
RAW_SUBJECT = catalog.value_subject(VOTES_RAW.name)
WRITERS = {
    v.version: Writer(RAW_SUBJECT, 100 + v.version, fastavro.parse_schema(json.loads(v.text)))
    for v in catalog.subjects()[RAW_SUBJECT]
}
UUID_A = "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f"
UUID_B = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
UUID_C = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"
EAST = f"{TENANT}|hq|east".encode()
WEST = f"{TENANT}|hq|west".encode()


def decode(value: bytes) -> dict[str, Any]:
    schema_id = int.from_bytes(value[1:5], "big")
    writer = next(w for w in WRITERS.values() if w.schema_id == schema_id)
    record = fastavro.schemaless_reader(io.BytesIO(value[5:]), writer.parsed, None)
    assert isinstance(record, dict)
    return record


class MemoryPublisher:
    """Keeps what it is asked to publish; refuses the voteUuids in `refuse`."""

    connected = True

    def __init__(self, refuse: set[str] | None = None) -> None:
        self.refuse = refuse or set()
        self.published: list[tuple[bytes, dict[str, Any]]] = []

    async def publish(self, records: Sequence[OutboundRecord]) -> list[bool]:
        results = []
        for record in records:
            assert record.topic == VOTES_RAW.name
            decoded = decode(record.value)
            ok = str(decoded["voteUuid"]) not in self.refuse
            if ok:
                self.published.append((record.key, decoded))
            results.append(ok)
        return results


class MemoryMarks(MarkStore):
    """The mark store's two calls over a dict; `down` answers as Redis being unreachable."""

    def __init__(self, marks: dict[str, bytes] | None = None, down: bool = False) -> None:
        self.marks = dict(marks or {})
        self.down = down
        self.reads = 0

    async def read(self, tenant_id: str, vote_uuids: Sequence[str]) -> list[bytes | None] | None:
        assert tenant_id == TENANT
        self.reads += 1
        return None if self.down else [self.marks.get(u) for u in vote_uuids]

    async def record(self, tenant_id: str, published: Sequence[tuple[str, bytes]]) -> None:
        assert tenant_id == TENANT
        if not self.down:
            self.marks.update(published)


def context(publisher: MemoryPublisher, marks: MemoryMarks) -> IngestContext:
    return IngestContext(
        # The registry is never asked: the writers are given, and encoding needs no lookup.
        codec=AvroCodec(SchemaRegistryClient({"url": "http://127.0.0.1:9"})),
        raw_writers=WRITERS,
        publisher=publisher,
        marks=marks,
        keyring=LocalKeyring.generate(),
        policy=SkewPolicy(),
    )


PRINCIPAL = Principal(
    tenant_id=TENANT,
    user_id="alice",
    role=Role.OCCUPANT,
    building_ids=frozenset({"hq"}),
    session_id="s1",
    token_id="t1",
    expires_at=datetime.now(UTC) + timedelta(minutes=15),
)
ZONES = TenantZones({"hq": frozenset({"east", "west"})})


def vote(vote_uuid: str, zone: str = "east", **overrides: object) -> dict[str, object]:
    item: dict[str, object] = {
        "voteUuid": vote_uuid,
        "buildingId": "hq",
        "zoneId": zone,
        "kind": "thermal",
        "value": 1,
        "clientTs": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "schemaVersion": 2,
    }
    item.update(overrides)
    return item


async def run(
    items: list[object], publisher: MemoryPublisher, marks: MemoryMarks
) -> list[ItemOutcome]:
    return await ingest(context(publisher, marks), PRINCIPAL, ZONES, items)


def statuses(outcomes: list[ItemOutcome]) -> list[str]:
    return [o.status.value for o in outcomes]


async def test_votes_are_keyed_by_zone_and_marked_with_it() -> None:
    publisher, marks = MemoryPublisher(), MemoryMarks()
    outcomes = await run([vote(UUID_A, "east"), vote(UUID_B, "west")], publisher, marks)
    assert statuses(outcomes) == ["accepted", "accepted"]
    assert [(key, str(r["voteUuid"]), r["zoneId"]) for key, r in publisher.published] == [
        (EAST, UUID_A, "east"),
        (WEST, UUID_B, "west"),
    ]
    assert marks.marks == {UUID_A: EAST, UUID_B: WEST}
    assert marks.reads == 1  # one round trip for the whole batch


async def test_a_resend_for_the_same_zone_is_a_duplicate_and_not_published() -> None:
    publisher, marks = MemoryPublisher(), MemoryMarks({UUID_A: EAST})
    outcomes = await run([vote(UUID_A, "east"), vote(UUID_B, "east")], publisher, marks)
    assert statuses(outcomes) == ["duplicate", "accepted"]
    assert [str(r["voteUuid"]) for _, r in publisher.published] == [UUID_B]


async def test_a_resend_for_another_zone_is_a_duplicate_and_not_published() -> None:
    publisher, marks = MemoryPublisher(), MemoryMarks({UUID_A: EAST})
    outcomes = await run([vote(UUID_A, "west")], publisher, marks)
    assert statuses(outcomes) == ["duplicate"]
    assert publisher.published == []
    # The claim keeps naming the zone the vote was published for.
    assert marks.marks == {UUID_A: EAST}


async def test_an_in_batch_repeat_for_another_zone_is_a_duplicate_of_the_first() -> None:
    publisher, marks = MemoryPublisher(), MemoryMarks()
    outcomes = await run([vote(UUID_A, "east"), vote(UUID_A, "west")], publisher, marks)
    assert statuses(outcomes) == ["accepted", "duplicate"]
    assert [key for key, _ in publisher.published] == [EAST]
    assert marks.marks == {UUID_A: EAST}


async def test_an_unconfirmed_vote_is_unavailable_and_never_marked() -> None:
    publisher, marks = MemoryPublisher(refuse={UUID_A}), MemoryMarks()
    items: list[object] = [vote(UUID_A), vote(UUID_B), vote(UUID_A, "west")]
    outcomes = await run(items, publisher, marks)
    assert statuses(outcomes) == ["rejected", "accepted", "rejected"]
    assert [o.error.value if o.error else None for o in outcomes] == [
        "unavailable",
        None,
        "unavailable",
    ]
    assert marks.marks == {UUID_B: EAST}


async def test_without_redis_every_valid_vote_is_published() -> None:
    publisher, marks = MemoryPublisher(), MemoryMarks({UUID_A: EAST}, down=True)
    outcomes = await run([vote(UUID_A, "west"), vote(UUID_B)], publisher, marks)
    # No claim can be read: the cross-zone re-send goes through (the limit the
    # module docstring states), and nothing is recorded.
    assert statuses(outcomes) == ["accepted", "accepted"]
    assert [key for key, _ in publisher.published] == [WEST, EAST]
    assert marks.marks == {UUID_A: EAST}


async def test_rejected_items_are_neither_checked_nor_published() -> None:
    publisher, marks = MemoryPublisher(), MemoryMarks({UUID_C: EAST})
    items: list[object] = [vote(UUID_C, value=9), vote(UUID_B, "nowhere"), "junk"]
    outcomes = await run(items, publisher, marks)
    assert [o.error.value if o.error else None for o in outcomes] == [
        "invalid_value",
        "unknown_zone",
        "invalid_schema",
    ]
    assert publisher.published == []
    assert marks.reads == 1 and marks.marks == {UUID_C: EAST}


async def test_the_envelope_comes_from_the_token_and_the_comment_is_encrypted() -> None:
    publisher, marks = MemoryPublisher(), MemoryMarks()
    ctx = context(publisher, marks)
    item = vote(UUID_A, comment="too warm", tenantId="evil", userId="mallory")
    (outcome,) = await ingest(ctx, PRINCIPAL, ZONES, [item])
    assert outcome.status.value == "accepted"
    ((_, record),) = publisher.published
    assert record["tenantId"] == TENANT
    assert record["userRef"] == ctx.keyring.pseudonym(TENANT, "alice")
    assert record["commentCipher"] is not None
    assert ctx.keyring.decrypt_comment(TENANT, record["commentCipher"]) == "too warm"
