"""The building stream over SSE: resume with Last-Event-ID, and who may open it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from functools import partial

import httpx
import redis

from devstack.seed import seed_zones
from sinks.live.redis_keys import building_events
from tests.integration.conftest import Tenant
from tests.integration.observe import wait_for, window, zone_snapshot
from tests.integration.sse_client import SseEvent, sse_events
from tests.integration.votes import vote


async def _next_aggregate(events: AsyncIterator[SseEvent], zone: str, n: int) -> SseEvent:
    async def find() -> SseEvent:
        while True:
            event = await anext(events)
            if event.event == "aggregate" and event.json["zoneId"] == zone:
                stats = window(event.json, "thermal", "15m")
                if stats is not None and stats["n"] == n:
                    return event

    return await asyncio.wait_for(find(), timeout=60)


def _published(tenant: Tenant, zone: str) -> bool:
    snap = zone_snapshot(tenant.settings, tenant.tenant_id, tenant.building_id, zone)
    return window(snap, "thermal", "15m") is not None


def _post(tenant: Tenant, items: list[dict[str, object]]) -> None:
    response = httpx.post(
        f"{tenant.gateway}/api/v1/votes/batch",
        json={"items": items},
        headers=tenant.headers(),
        timeout=30,
    )
    assert response.json()["counts"]["accepted"] == len(items)


async def test_reconnect_with_last_event_id_receives_missed_events(tenant: Tenant) -> None:
    url = f"{tenant.gateway}/api/v1/buildings/{tenant.building_id}/stream"
    fm = tenant.headers(role="fm", user="fm-1")
    async with httpx.AsyncClient(timeout=30) as client:
        async with client.stream("GET", url, headers=fm) as stream:
            events = sse_events(stream)
            assert (await anext(events)).event == "snapshot"
            _post(tenant, [vote("z1", 1)])
            seen = await _next_aggregate(events, "z1", 1)
        assert seen.id is not None

        # While disconnected, two more zones change.
        _post(tenant, [vote("z2", -1), vote("z3", 3)])
        for zone in ("z2", "z3"):
            wait_for(partial(_published, tenant, zone), 60, f"{zone} published")
        key = building_events(tenant.tenant_id, tenant.building_id)
        with redis.Redis.from_url(tenant.settings.redis_url_for("ops"), decode_responses=True) as r:
            missed_ids = [entry[0] for entry in r.xrange(key, min=f"({seen.id}", max="+")]
        assert len(missed_ids) >= 2

        resumed_headers = {**fm, "Last-Event-ID": seen.id}
        async with client.stream("GET", url, headers=resumed_headers) as stream:
            events = sse_events(stream)
            replayed = [await asyncio.wait_for(anext(events), 30) for _ in missed_ids]

    # No snapshot on resume: exactly the events after Last-Event-ID, in stream order.
    assert [e.id for e in replayed] == missed_ids
    assert {e.event for e in replayed} == {"aggregate"}
    assert {"z2", "z3"} <= {e.json["zoneId"] for e in replayed}


def test_stream_authorization(tenant: Tenant) -> None:
    seed_zones(tenant.settings, tenant.tenant_id, "b2", [("f1", "x", "not in the token")])
    other_tenant = f"{tenant.tenant_id}-other"
    seed_zones(tenant.settings, other_tenant, "b9", [("f1", "x", "another tenant")])

    def status(building: str, headers: dict[str, str]) -> tuple[int, str]:
        response = httpx.get(
            f"{tenant.gateway}/api/v1/buildings/{building}/stream", headers=headers, timeout=10
        )
        return response.status_code, response.json()["error"]["code"]

    fm = tenant.headers(role="fm", user="fm-1")
    assert status("b2", fm) == (403, "forbidden_building")
    assert status("b9", fm) == (404, "unknown_building")
    assert status("nowhere", fm) == (404, "unknown_building")
    assert status("b1", tenant.headers(role="occupant")) == (403, "forbidden_action")
    assert status("b1", {}) == (401, "missing_token")
