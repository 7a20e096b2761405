"""The live buckets of the partitions a worker holds, and which zones to publish when.

An in-memory copy of the `b|…` keys of the vote state, grouped by partition
and zone, so publishing a zone's windows reads no database. It is filled from
the state when a partition is assigned, updated by every batch, and dropped
when the partition is revoked, so two workers never publish one zone.

A zone is dirty after a batch changed one of its buckets. When the clock's
minute changes, every zone with a live bucket is dirty again because its
windows slid; a kind whose last bucket left the longest window is published
once more (empty) and then forgotten. Each flush takes at most `limit` zones;
the rest stay dirty, oldest first, for the next one, so a minute boundary
never publishes every zone in one go and no zone waits behind busier ones.

A deleted zone (a tombstone on config.zones) is dropped from the cache by
the publisher (`drop_zone`), whenever it shows up again.

`waiting` holds, per zone, when each vote applied since the zone's last
publish reached the gateway (its `receivedAt`); the publisher takes them when
it publishes the zone, to measure ingest→publish latency. At most
`WAITING_PER_ZONE` are kept per zone, the oldest, so the tail is never lost
and a zone that cannot be published (Redis down) holds bounded memory.

`windows` keeps the sums of each zone's windows from one publish to the next
(streams/tables/live_windows.py); a dropped partition's zones are forgotten
there too, so a revoked partition's sums do not outlive its buckets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.tables.comfort_buckets import LONGEST_WINDOW_MIN
from streams.tables.live_windows import LiveWindows

WAITING_PER_ZONE = 10_000
# partition → zone key → kind → minute → bucket
Cache = dict[int, dict[str, dict[str, dict[int, Mapping[str, Any]]]]]


@dataclass
class LiveBuckets:
    cache: Cache = field(default_factory=dict)
    dirty: dict[str, int] = field(default_factory=dict)  # zone → partition
    last_minute: int | None = None
    windows: LiveWindows = field(default_factory=LiveWindows)
    waiting: dict[str, list[float]] = field(default_factory=dict)

    def put(self, partition: int, zone: str, kind: str, minute: int, bucket: Any) -> None:
        # Kept as given, and never changed in place afterwards: `windows` tells
        # a replaced bucket from the one it summed by identity.
        zones = self.cache.setdefault(partition, {})
        zones.setdefault(zone, {}).setdefault(kind, {})[minute] = bucket
        self._mark(zone, partition)

    def received(self, zone: str, received_at: list[float]) -> None:
        """Votes with these `receivedAt` (epoch s) now count in the zone's live buckets."""
        waiting = self.waiting.setdefault(zone, [])
        waiting.extend(received_at[: WAITING_PER_ZONE - len(waiting)])

    def take_waiting(self, zone: str) -> list[float]:
        """The zone was published: the `receivedAt` of every vote it now shows first."""
        return self.waiting.pop(zone, [])

    def _mark(self, zone: str, partition: int) -> None:
        # To the back of the queue, so zones changed often cannot starve the rest.
        self.dirty.pop(zone, None)
        self.dirty[zone] = partition

    def drop_partition(self, partition: int) -> None:
        for zone in self.cache.pop(partition, {}):
            self.dirty.pop(zone, None)
            self.waiting.pop(zone, None)
            self.windows.forget(zone)

    def drop_zone(self, zone: str) -> bool:
        """Forget a deleted zone: its buckets, its turn to publish, its window sums.

        Only this cache forgets it: the buckets stay in the vote state and expire
        there as any other. True if the zone was held here.
        """
        self.dirty.pop(zone, None)
        self.waiting.pop(zone, None)
        self.windows.forget(zone)
        held = False
        for zones in self.cache.values():
            held = zones.pop(zone, None) is not None or held
        return held

    def partitions(self) -> set[int]:
        return set(self.cache)

    def due(self, now_minute: int, limit: int) -> list[tuple[str, dict[str, dict[int, Any]]]]:
        """Up to `limit` zones to publish now, with their live buckets per kind."""
        if self.last_minute != now_minute:
            self.last_minute = now_minute
            for partition, zones in self.cache.items():
                for zone in zones:
                    self.dirty.setdefault(zone, partition)
        horizon = now_minute - LONGEST_WINDOW_MIN
        out: list[tuple[str, dict[str, dict[int, Any]]]] = []
        # Oldest dirty first (insertion order).
        for zone in list(self.dirty)[:limit]:
            partition = self.dirty.pop(zone)
            kinds = self.cache.get(partition, {}).get(zone)
            if kinds is None:
                continue
            out.append((zone, {kind: dict(buckets) for kind, buckets in kinds.items()}))
            # Forget what has left every window, after this last publish of it.
            for kind in list(kinds):
                buckets = kinds[kind]
                for minute in [m for m in buckets if m <= horizon]:
                    del buckets[minute]
                if not buckets:
                    del kinds[kind]
            if not kinds:
                del self.cache[partition][zone]
        return out
