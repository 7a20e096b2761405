"""The worker follows the config topics: live snapshots name each zone's floor and
name, and a zone deleted through the admin API leaves Redis and the building's SSE
stream, and is not published again.

All on the running stack: the admin API through the gateway, the outbox relay,
config.zones, the worker's config view, Redis and the gateway's SSE route.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from devstack.raw_votes import RawVoteProducer, raw_vote
from sbp.settings import Settings
from tests.integration.admin_calls import ADMIN, fresh_tenant, token, vote_status
from tests.integration.observe import (
    vote_count,
    wait_for,
    wait_window,
    window,
    worker_stats,
    zone_snapshot,
)
from tests.integration.sse_client import SseEvent, sse_events

EXPECTED_EAST_5M = {
    "n": 2,
    "mean": 1.5,
    "distribution": {"1": 1, "2": 1},
    "pctDissatisfied": 50.0,
    "preferences": {},
    "uniqueVoters": 1,
}


async def _collect(events: AsyncIterator[SseEvent], into: list[SseEvent]) -> None:
    async for event in events:
        into.append(event)


def _placed(
    settings: Settings, tenant_id: str, zone: str, place: tuple[str, str]
) -> dict[str, Any] | None:
    snap = zone_snapshot(settings, tenant_id, "hq", zone)
    if snap is None or (snap["floorId"], snap["zoneName"]) != place:
        return None
    return snap


def _removed_events(seen: list[SseEvent], zone: str) -> list[SseEvent]:
    return [e for e in seen if e.event == "zone_removed" and e.json["zoneId"] == zone]


async def test_snapshots_name_the_floor_and_a_deleted_zone_leaves_the_live_view(
    stack: Settings,
) -> None:
    tenant_id, admin = fresh_tenant(stack)
    building = admin("POST", f"{ADMIN}/buildings", {"buildingId": "hq", "name": "HQ"})
    assert building.status_code == 201, building.text
    for floor_id, name in (("f3", "Third"), ("f4", "Fourth")):
        created = admin("POST", f"{ADMIN}/buildings/hq/floors", {"floorId": floor_id, "name": name})
        assert created.status_code == 201, created.text
    for zone_id, floor_id, name in (("east", "f3", "East wing"), ("west", "f4", "West wing")):
        body = {"zoneId": zone_id, "floorId": floor_id, "name": name}
        created = admin("POST", f"{ADMIN}/buildings/hq/zones", body)
        assert created.status_code == 201, created.text

    # Votes are taken as soon as the gateway's view has the zone; the second one
    # then shows the published windows' exact figures.
    wait_for(lambda: vote_status(stack, tenant_id, "hq", "east", 2) == "accepted", 10, "east")
    assert vote_status(stack, tenant_id, "hq", "east", 1) == "accepted"
    wait_for(lambda: vote_status(stack, tenant_id, "hq", "west", -1) == "accepted", 10, "west")

    east = wait_window(stack, tenant_id, "east", "thermal", "5m", 2, building="hq")
    assert {k: east[k] for k in EXPECTED_EAST_5M} == EXPECTED_EAST_5M
    wait_window(stack, tenant_id, "west", "thermal", "5m", 1, building="hq")
    # The worker's view may learn a zone a moment after the gateway's took its first
    # vote; the snapshot names the floor once it has (republished within a tick).
    for zone, place in (("east", ("f3", "East wing")), ("west", ("f4", "West wing"))):
        snap = wait_for(
            lambda zone=zone, place=place: _placed(stack, tenant_id, zone, place),  # type: ignore[misc]
            10,
            f"{zone}'s snapshot naming its floor",
        )
        placed_window = window(snap, "thermal", "5m")
        assert placed_window is not None and placed_window["n"] == (2 if zone == "east" else 1)
    west = zone_snapshot(stack, tenant_id, "hq", "west")

    url = f"http://{stack.host}:{stack.gateway_port}/api/v1/buildings/hq/stream"
    fm = {"Authorization": f"Bearer {token(stack, tenant_id, 'fm', ['hq'])}"}
    seen: list[SseEvent] = []
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("GET", url, headers=fm) as stream,
    ):
        events = sse_events(stream)
        first = await asyncio.wait_for(anext(events), 30)
        assert first.event == "snapshot"
        assert [(z["zoneId"], z["floorId"], z["zoneName"]) for z in first.json["zones"]] == [
            ("east", "f3", "East wing"),
            ("west", "f4", "West wing"),
        ]
        reader = asyncio.create_task(_collect(events, seen))
        try:
            deleted_at = datetime.now(UTC)
            deleted = admin("DELETE", f"{ADMIN}/buildings/hq/zones/east")
            assert deleted.status_code == 204

            for _ in range(300):
                if _removed_events(seen, "east"):
                    break
                await asyncio.sleep(0.1)
            (removal,) = _removed_events(seen, "east")
            body = removal.json
            removed_at = datetime.fromisoformat(body.pop("removedAt"))
            assert body == {
                "type": "zone_removed",
                "tenantId": tenant_id,
                "buildingId": "hq",
                "zoneId": "east",
            }
            # When the relay wrote the tombstone: after the DELETE was sent.
            assert deleted_at - timedelta(seconds=1) <= removed_at <= datetime.now(UTC)
            assert zone_snapshot(stack, tenant_id, "hq", "east") is None
            assert zone_snapshot(stack, tenant_id, "hq", "west") == west

            # A vote the gateway accepted just before the deletion, still on its way:
            # the worker counts and stores it, but never publishes the zone again.
            withheld = worker_stats(stack).get("removed_zones_withheld", 0)
            with RawVoteProducer(stack) as producer:
                producer.produce([raw_vote(tenant_id, "hq", "east", value=3)])
                producer.flush()
            wait_for(lambda: vote_count(stack, tenant_id) == 4, 60, "the late vote stored")
            wait_for(
                lambda: worker_stats(stack).get("removed_zones_withheld", 0) > withheld,
                30,
                "the deleted zone withheld from publishing",
            )
            # The other zone still publishes.
            assert vote_status(stack, tenant_id, "hq", "west", 1) == "accepted"
            wait_window(stack, tenant_id, "west", "thermal", "5m", 2, building="hq")
            for _ in range(100):
                if any(e.event == "aggregate" and e.json["zoneId"] == "west" for e in seen):
                    break
                await asyncio.sleep(0.1)
        finally:
            reader.cancel()

    assert zone_snapshot(stack, tenant_id, "hq", "east") is None
    after_removal = seen[seen.index(removal) + 1 :]
    assert {e.json["zoneId"] for e in after_removal if e.event == "aggregate"} == {"west"}
    assert len(_removed_events(seen, "east")) == 1

    # A new connection's snapshot no longer lists the deleted zone.
    async with (
        httpx.AsyncClient(timeout=60) as client,
        client.stream("GET", url, headers=fm) as stream,
    ):
        snapshot = await asyncio.wait_for(anext(sse_events(stream)), 30)
    assert snapshot.event == "snapshot"
    assert [z["zoneId"] for z in snapshot.json["zones"]] == ["west"]
