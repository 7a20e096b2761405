"""Live windows to Redis: at most one absolute snapshot per zone per second.

A one-second timer takes the due zones from the live cache (streams/tables/
live_buckets.py), sums their buckets into the 5/15/60-minute windows at the
clock's current minute, and writes them in one Redis pipeline. The sums of
each window's past minutes are kept from tick to tick (LiveBuckets.windows),
so a tick mostly adds the current minute's bucket to them. Only zones of
partitions this worker holds are in the cache, so after a rebalance each zone
has exactly one publisher. It never waits on the consumer: seeking is the
stage's keeper's job (VoteStage.keep_partitions).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from sinks.live.snapshot_writer import write_snapshots
from streams.agents.vote_stage import VoteStage
from streams.tables.comfort_buckets import epoch_minute
from streams.tables.live_windows import LiveWindows

log = logging.getLogger(__name__)
# Zones per flush: a minute boundary with many zones spreads over a few ticks.
ZONES_PER_FLUSH = 500


def snapshot(
    zone: str,
    kinds: Mapping[str, Mapping[int, Mapping[str, Any]]],
    now: datetime,
    windows: LiveWindows,
) -> dict[str, Any]:
    tenant_id, building_id, zone_id = zone.split("|")
    now_minute = epoch_minute(now)
    return {
        "type": "aggregate",
        "tenantId": tenant_id,
        "buildingId": building_id,
        "zoneId": zone_id,
        "asOf": now.isoformat(),
        "asOfMinute": now_minute,
        "kinds": {
            kind: windows.of(zone, kind, buckets, now_minute) for kind, buckets in kinds.items()
        },
    }


class LivePublisher:
    def __init__(self, stage: VoteStage, redis: aioredis.Redis) -> None:
        self.stage = stage
        self.redis = redis
        self.published = 0

    async def tick(self) -> None:
        if not self.stage.consumer.ready():
            return
        now = self.stage.clock()
        due = self.stage.live.due(epoch_minute(now), ZONES_PER_FLUSH)
        if not due:
            return
        windows = self.stage.live.windows
        snapshots = [snapshot(zone, kinds, now, windows) for zone, kinds in due]
        try:
            await write_snapshots(self.redis, snapshots)
        except aioredis.RedisError:
            # Redis is down: the zones stay dirty and the next tick retries them.
            log.exception("publishing %d snapshots failed; will retry", len(snapshots))
            for zone, _kinds in due:
                partition = self._partition_of(zone)
                if partition is not None:
                    self.stage.live.dirty[zone] = partition
            return
        self.published += len(snapshots)

    def _partition_of(self, zone: str) -> int | None:
        for partition, zones in self.stage.live.cache.items():
            if zone in zones:
                return partition
        return None
