"""One comfort vote end to end: gateway → votes.raw → processor → votes.accepted →
buckets → PostgreSQL rows, a Redis snapshot and SSE events, on the real stack."""

from __future__ import annotations

import asyncio
import struct
from statistics import mean
from typing import Any

import httpx

from devstack.raw_votes import RawVoteProducer, raw_vote
from tests.integration.conftest import Tenant
from tests.integration.observe import (
    decode,
    end_offsets,
    read_new_records,
    vote_count,
    vote_rows,
    wait_for,
    wait_window,
    window,
    worker_stats,
    zone_snapshot,
)
from tests.integration.sse_client import SseEvent, sse_events
from tests.integration.votes import vote


def _post(tenant: Tenant, items: list[dict[str, Any]], user: str = "occupant-1") -> Any:
    response = httpx.post(
        f"{tenant.gateway}/api/v1/votes/batch",
        json={"items": items},
        headers=tenant.headers(user=user),
        timeout=30,
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_batch_reaches_sse_postgres_and_redis(tenant: Tenant) -> None:
    z1 = [vote("z1", v) for v in (2, 3, -1, 0, 2)]
    z2 = [vote("z2", v, kind="air") for v in (1, 5, 4)]
    items = z1 + z2
    url = f"{tenant.gateway}/api/v1/buildings/{tenant.building_id}/stream"

    async with (
        httpx.AsyncClient(timeout=30) as client,
        client.stream("GET", url, headers=tenant.headers(role="fm", user="fm-1")) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        events = sse_events(stream)
        first = await anext(events)
        assert first.event == "snapshot"
        assert first.json["zones"] == []

        response = await client.post(
            f"{tenant.gateway}/api/v1/votes/batch",
            json={"items": items},
            headers=tenant.headers(),
        )
        body = response.json()
        assert response.status_code == 200
        assert body["counts"] == {
            "accepted": 8,
            "late_submission": 0,
            "duplicate": 0,
            "rejected": 0,
        }
        assert [r["index"] for r in body["results"]] == list(range(8))
        assert [r["voteUuid"] for r in body["results"]] == [i["voteUuid"] for i in items]

        async def z1_with_all_votes() -> SseEvent:
            while True:
                event = await anext(events)
                if event.event != "aggregate" or event.json["zoneId"] != "z1":
                    continue
                if window(event.json, "thermal", "15m")["n"] == 5:  # type: ignore[index]
                    return event

        event = await asyncio.wait_for(z1_with_all_votes(), timeout=60)

    assert event.id is not None
    stats = window(event.json, "thermal", "15m")
    assert stats is not None
    assert stats["mean"] == mean(v["value"] for v in z1)
    assert stats["distribution"] == {"-1": 1, "0": 1, "2": 2, "3": 1}
    assert stats["pctDissatisfied"] == 60.0  # |v| >= 2: three of five
    assert stats["uniqueVoters"] == 1

    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 8, 60, "8 rows")
    rows = vote_rows(tenant.settings, tenant.tenant_id)
    assert sorted((r[0], r[1], r[2], r[3]) for r in rows) == sorted(
        (i["voteUuid"], i["zoneId"], i["kind"], i["value"]) for i in items
    )

    air = wait_window(tenant.settings, tenant.tenant_id, "z2", "air", "15m", 3)
    assert air["mean"] == mean([1, 5, 4])
    assert air["pctDissatisfied"] == 100.0 / 3  # v <= 2: one of three


def test_same_batch_again_is_duplicate_and_changes_nothing(tenant: Tenant) -> None:
    items = [vote("z1", v) for v in (1, -2, 3)]
    assert _post(tenant, items)["counts"]["accepted"] == 3
    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 3, 60, "3 rows")
    window_before = wait_window(tenant.settings, tenant.tenant_id, "z1", "thermal", "60m", 3)
    raw_before = end_offsets(tenant.settings, "votes.raw")

    again = _post(tenant, items)

    assert [r["status"] for r in again["results"]] == ["duplicate"] * 3
    assert again["counts"] == {"accepted": 0, "late_submission": 0, "duplicate": 3, "rejected": 0}
    # Nothing was published, so nothing downstream can change.
    assert end_offsets(tenant.settings, "votes.raw") == raw_before
    assert vote_count(tenant.settings, tenant.tenant_id) == 3
    after = zone_snapshot(tenant.settings, tenant.tenant_id, "b1", "z1")
    assert window(after, "thermal", "60m") == window_before


def test_a_duplicate_inside_one_batch_is_counted_once(tenant: Tenant) -> None:
    first = vote("z3", 2)
    body = _post(tenant, [first, dict(first), vote("z3", -3)])
    assert [r["status"] for r in body["results"]] == ["accepted", "duplicate", "accepted"]
    stats = wait_window(tenant.settings, tenant.tenant_id, "z3", "thermal", "60m", 2)
    assert stats["distribution"] == {"-3": 1, "2": 1}
    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 2, 60, "two rows")


def test_v1_vote_is_migrated_to_v2(tenant: Tenant) -> None:
    cold, ok, hot = (vote("z2", v, version=1) for v in (-1, 0, 1))
    assert _post(tenant, [cold, ok, hot])["counts"]["accepted"] == 3

    wait_for(lambda: vote_count(tenant.settings, tenant.tenant_id) == 3, 60, "3 rows")
    by_uuid = {r[0]: r for r in vote_rows(tenant.settings, tenant.tenant_id)}
    assert by_uuid[cold["voteUuid"]][2:4] == ("thermal", -2)
    assert by_uuid[ok["voteUuid"]][2:4] == ("thermal", 0)
    assert by_uuid[hot["voteUuid"]][2:4] == ("thermal", 2)
    assert {r[5] for r in by_uuid.values()} == {1}

    stats = wait_window(tenant.settings, tenant.tenant_id, "z2", "thermal", "15m", 3)
    assert stats["distribution"] == {"-2": 1, "0": 1, "2": 1}


def _truncated_vote(producer: RawVoteProducer, tenant: Tenant) -> bytes:
    """A correctly framed votes.raw record with a registered schema id, cut short."""
    _key, whole = producer.encode(raw_vote(tenant.tenant_id, "b1", "z1", value=1))
    return whole[: len(whole) // 2]


def test_poison_records_reach_the_dlq_and_later_votes_flow(tenant: Tenant) -> None:
    settings = tenant.settings
    partitions = sorted(end_offsets(settings, "votes.raw"))
    dlq_before = end_offsets(settings, "votes.dlq")
    producer = RawVoteProducer(settings)
    poison = {
        f"{tenant.tenant_id}|garbage".encode(): (b"this is not avro", "not_avro_framed"),
        f"{tenant.tenant_id}|truncated".encode(): (
            _truncated_vote(producer, tenant),
            "undecodable",
        ),
        f"{tenant.tenant_id}|unknown-schema".encode(): (
            b"\x00" + struct.pack(">I", 987_654_321) + b"\x02",
            "unknown_schema_id",
        ),
    }
    for partition in partitions:
        for key, (value, _code) in poison.items():
            producer.produce_bytes(key, value, partition=partition)
    producer.flush()

    def all_poison_dead_lettered(records: list[Any]) -> bool:
        return sum(r.key() in poison for r in records) >= len(poison) * len(partitions)

    records = read_new_records(settings, "votes.dlq", dlq_before, all_poison_dead_lettered)
    letters = [decode(settings, r.value()) for r in records if r.key() in poison]
    assert len(letters) == len(poison) * len(partitions)
    for key, (value, code) in poison.items():
        mine = [letter for letter in letters if letter["originalKey"] == key]
        assert sorted(letter["originalPartition"] for letter in mine) == partitions
        assert {letter["errorCode"] for letter in mine} == {code}
        assert {letter["originalValue"] for letter in mine} == {value}
        assert {letter["originalTopic"] for letter in mine} == {"votes.raw"}
        assert {letter["consumerGroup"] for letter in mine} == {"sbp-worker"}
        assert all(letter["attempts"] == 1 and letter["errorMessage"] for letter in mine)

    # Votes behind the poison, on every partition, still flow.
    later = [vote(z, 1) for z in tenant.zones for _ in range(5)]
    assert _post(tenant, later)["counts"]["accepted"] == len(later)
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == len(later), 60, "later votes")


def test_processor_dedup_is_authoritative_without_the_gateway(tenant: Tenant) -> None:
    """The same vote produced twice onto votes.raw (e.g. Redis lost the gateway's mark)
    is stored and counted once."""
    settings = tenant.settings
    record = raw_vote(tenant.tenant_id, "b1", "z4", value=3)
    before = worker_stats(settings).get("duplicate", 0)
    with RawVoteProducer(settings) as producer:
        producer.produce([record, record, record])

    wait_for(
        lambda: worker_stats(settings).get("duplicate", 0) >= before + 2,
        60,
        "two duplicates judged",
    )
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == 1, 60, "one row")
    snap = wait_for(
        lambda: zone_snapshot(settings, tenant.tenant_id, "b1", "z4"), 30, "z4 snapshot"
    )
    assert window(snap, "thermal", "15m")["n"] == 1  # type: ignore[index]
    assert vote_count(settings, tenant.tenant_id) == 1
