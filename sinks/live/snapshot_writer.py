"""Writes zone snapshots to Redis: one pipeline per flush, absolute values only.

Each snapshot replaces the zone's previous one (never an increment), so a
replayed or repeated flush cannot double-count; each is also appended to the
building's event stream, trimmed approximately to EVENTS_MAXLEN.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis

from sinks.live.redis_keys import EVENTS_MAXLEN, building_events, comfort_snapshots


async def write_snapshots(client: aioredis.Redis, snapshots: Sequence[dict[str, Any]]) -> None:
    if not snapshots:
        return
    async with client.pipeline(transaction=False) as pipe:
        for snap in snapshots:
            body = json.dumps(snap, separators=(",", ":"))
            tenant, building = snap["tenantId"], snap["buildingId"]
            pipe.hset(comfort_snapshots(tenant, building), snap["zoneId"], body)
            pipe.xadd(
                building_events(tenant, building),
                {"type": "aggregate", "data": body},
                maxlen=EVENTS_MAXLEN,
                approximate=True,
            )
        await pipe.execute()
