"""Writes zone snapshots to Redis, and removes deleted zones: one pipeline per flush.

Each snapshot replaces the zone's previous one (never an increment), so a
replayed or repeated flush cannot double-count; each is also appended to the
building's event stream, trimmed approximately to EVENTS_MAXLEN.

A deleted zone's snapshot is removed from the building's hash, and a
`zone_removed` event appended only when this call removed it: every worker
learns of a deletion (and a restarted one learns of it again), but the stream
gets one event per snapshot that was there. A crash between the two steps loses
the event, never the removal: a client that reconnects gets a `snapshot`
without the zone.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from sinks.live.redis_keys import EVENTS_MAXLEN, building_events, comfort_snapshots


def _body(event: dict[str, Any]) -> str:
    return json.dumps(event, separators=(",", ":"))


async def write_snapshots(client: aioredis.Redis, snapshots: Sequence[dict[str, Any]]) -> None:
    if not snapshots:
        return
    async with client.pipeline(transaction=False) as pipe:
        for snap in snapshots:
            body = _body(snap)
            tenant, building = snap["tenantId"], snap["buildingId"]
            pipe.hset(comfort_snapshots(tenant, building), snap["zoneId"], body)
            pipe.xadd(
                building_events(tenant, building),
                {"type": "aggregate", "data": body},
                maxlen=EVENTS_MAXLEN,
                approximate=True,
            )
        await pipe.execute()


async def remove_zones(client: aioredis.Redis, removals: Sequence[dict[str, Any]]) -> int:
    """Remove each `zone_removed` event's snapshot; announce those that were there.

    Returns how many snapshots this call removed.
    """
    if not removals:
        return 0
    async with client.pipeline(transaction=False) as pipe:
        for event in removals:
            pipe.hdel(comfort_snapshots(event["tenantId"], event["buildingId"]), event["zoneId"])
        deleted = await pipe.execute()
    gone = [event for event, n in zip(removals, deleted, strict=True) if n]
    if gone:
        async with client.pipeline(transaction=False) as pipe:
            for event in gone:
                pipe.xadd(
                    building_events(event["tenantId"], event["buildingId"]),
                    {"type": event["type"], "data": _body(event)},
                    maxlen=EVENTS_MAXLEN,
                    approximate=True,
                )
            await pipe.execute()
    return len(gone)
