"""Live windows to Redis: at most one absolute snapshot per zone per second.

A one-second timer takes the due zones from the live cache (streams/tables/
live_buckets.py), sums their buckets into the 5/15/60-minute windows at the
clock's current minute, and writes them in one Redis pipeline. The sums of
each window's past minutes are kept from tick to tick (LiveBuckets.windows),
so a tick mostly adds the current minute's bucket to them. Only zones of
partitions this worker holds are in the cache, so after a rebalance each zone
has exactly one publisher. It never waits on the consumer: seeking is the
stage's keeper's job (VoteStage.keep_partitions).

Snapshots carry the zone's floor and name from the config view
(streams/config_view.py), so the publisher waits until the view has caught up
(zones stay dirty meanwhile). A zone published before the view learned it (the
view may see a new zone a moment after the gateway took its first vote) goes out
with a null floor and name, and again once the view knows it. A zone deleted
from the configuration is never published again: each tick first takes the
removals the view learned since the last one, drops those zones from the live
cache and removes their snapshots (sinks/live/snapshot_writer.py::remove_zones),
and a deleted zone that becomes due again (a vote accepted just before the
deletion, buckets recovered after a restart) is dropped instead of published.
The first tick after a start takes every removal the view remembers, so a
deletion made while the worker was down is applied too. Event shapes:
streams/tables/live_events.py.

Once a zone's snapshot is written (and so on its building's stream, which SSE
reads), each vote it shows for the first time ends its ingest→publish latency:
now minus the vote's `receivedAt` at the gateway, in wall-clock time (never
the injectable window clock), handed to `observe_latencies` once per tick.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from sinks.live.snapshot_writer import remove_zones, write_snapshots
from streams.agents.vote_stage import VoteStage
from streams.config_view import ConfigView
from streams.tables.comfort_buckets import epoch_minute, zone_key
from streams.tables.live_events import snapshot, split_removed, zone_removed

log = logging.getLogger(__name__)
# Zones per flush: a minute boundary with many zones spreads over a few ticks.
ZONES_PER_FLUSH = 500


class LivePublisher:
    def __init__(
        self,
        stage: VoteStage,
        redis: aioredis.Redis,
        config: ConfigView,
        observe_latencies: Callable[[list[float]], None] = lambda _seconds: None,
    ) -> None:
        self.stage = stage
        self.redis = redis
        self.config = config
        self.observe_latencies = observe_latencies
        self.published = 0
        # Snapshots of deleted zones removed from Redis, and due zones not published
        # because they were deleted.
        self.removed = 0
        self.withheld = 0
        self._removals_done = 0  # the sequence number of the last removal applied
        # Zones last published without a floor and name (the view did not know them
        # yet: it may learn a new zone a moment after the gateway took its first vote).
        # Each tick republishes those the view has learned since. Bounded by the zones
        # in the live cache: one that left it leaves this set too.
        self._unplaced: set[str] = set()

    async def tick(self) -> None:
        if not self.stage.consumer.ready() or not self.config.ready.is_set():
            return
        if not await self._remove_deleted_zones():
            return
        self._republish_placed()
        now = self.stage.clock()
        due, deleted = split_removed(
            self.stage.live.due(epoch_minute(now), ZONES_PER_FLUSH), self.config.is_removed
        )
        for zone in deleted:
            self.stage.live.drop_zone(zone)
        self.withheld += len(deleted)
        if not due:
            return
        windows = self.stage.live.windows
        places = {zone: self.config.zone(*zone.split("|")) for zone, _kinds in due}
        snapshots = [snapshot(zone, kinds, now, windows, places[zone]) for zone, kinds in due]
        # Taken with the snapshots: votes a batch applies while Redis answers are in
        # the next publish, and end their latency there.
        waiting = {zone: self.stage.live.take_waiting(zone) for zone, _kinds in due}
        try:
            await write_snapshots(self.redis, snapshots)
        except aioredis.RedisError:
            # Redis is down: the zones stay dirty and the next tick retries them.
            log.exception("publishing %d snapshots failed; will retry", len(snapshots))
            for zone, _kinds in due:
                partition = self._partition_of(zone)
                if partition is not None:
                    self.stage.live.dirty[zone] = partition
                    self.stage.live.received(zone, waiting[zone])
            return
        self.published += len(snapshots)
        for zone, place in places.items():
            if place is None:
                self._unplaced.add(zone)
            else:
                self._unplaced.discard(zone)
        published_at = time.time()
        self.observe_latencies(
            [published_at - received_at for times in waiting.values() for received_at in times]
        )

    async def _remove_deleted_zones(self) -> bool:
        """Apply the removals not applied yet; False if Redis failed (retried next tick)."""
        removals = self.config.removals_after(self._removals_done)
        if not removals:
            return True
        for removal in removals:
            self.stage.live.drop_zone(zone_key(*removal.zone))
        try:
            self.removed += await remove_zones(self.redis, [zone_removed(r) for r in removals])
        except aioredis.RedisError:
            log.exception("removing %d deleted zones failed; will retry", len(removals))
            return False
        self._removals_done = removals[-1].seq
        return True

    def _republish_placed(self) -> None:
        """Mark dirty the zones published without a place that the view now knows."""
        for zone in list(self._unplaced):
            partition = self._partition_of(zone)
            if partition is None:
                self._unplaced.discard(zone)  # left the cache (expired, moved, deleted)
            elif self.config.zone(*zone.split("|")) is not None:
                self._unplaced.discard(zone)
                self.stage.live.dirty.setdefault(zone, partition)

    def _partition_of(self, zone: str) -> int | None:
        for partition, zones in self.stage.live.cache.items():
            if zone in zones:
                return partition
        return None
