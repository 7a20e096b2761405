"""What the live publisher writes for a zone: its snapshot, or its removal. Pure.

Both go to the building's live stream, which SSE relays with the entry's `type`
as the event name (gateway/stream_routes.py):

- `aggregate`: the zone's absolute 5/15/60-minute windows, with `floorId` and
  `zoneName` from the config view so a dashboard can group building → floors →
  zones. They are null while the view does not know the zone yet (its record
  is not read yet). Fields were only added: a client that ignores them reads
  what it read before.
- `zone_removed`: `{"type", "tenantId", "buildingId", "zoneId", "removedAt"}`
  once the zone was deleted (a tombstone on config.zones; `removedAt` is when it
  was written). The zone's snapshot leaves the building's hash with it, so a new
  connection's `snapshot` event no longer lists the zone, and no `aggregate` of
  it follows. A new event name rather than an `aggregate` with a flag:
  EventSource hands a named event only to listeners of that name, so a client
  written before it never sees it, and none mistakes a removal for a zone whose
  windows are empty.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

from streams.tables.comfort_buckets import epoch_minute
from streams.tables.live_windows import LiveWindows
from streams.tables.tenant_config import Removal, Zone

T = TypeVar("T")


def snapshot(
    zone: str,
    kinds: Mapping[str, Mapping[int, Mapping[str, Any]]],
    now: datetime,
    windows: LiveWindows,
    place: Zone | None,
) -> dict[str, Any]:
    """The `aggregate` event of `zone` (`tenant|building|zone`) at `now`."""
    tenant_id, building_id, zone_id = zone.split("|")
    now_minute = epoch_minute(now)
    return {
        "type": "aggregate",
        "tenantId": tenant_id,
        "buildingId": building_id,
        "zoneId": zone_id,
        "floorId": place.floor_id if place is not None else None,
        "zoneName": place.name if place is not None else None,
        "asOf": now.isoformat(),
        "asOfMinute": now_minute,
        "kinds": {
            kind: windows.of(zone, kind, buckets, now_minute) for kind, buckets in kinds.items()
        },
    }


def zone_removed(removal: Removal) -> dict[str, Any]:
    """The `zone_removed` event of a deleted zone."""
    tenant_id, building_id, zone_id = removal.zone
    return {
        "type": "zone_removed",
        "tenantId": tenant_id,
        "buildingId": building_id,
        "zoneId": zone_id,
        "removedAt": datetime.fromtimestamp(removal.at_s, UTC).isoformat(),
    }


def split_removed(
    due: Sequence[tuple[str, T]], is_removed: Callable[[str, str, str], bool]
) -> tuple[list[tuple[str, T]], list[str]]:
    """The due zones to publish, and the deleted ones among them, never to publish again.

    A deleted zone can still be due: votes the gateway accepted just before the
    deletion, or buckets recovered from the state after a restart.
    """
    keep: list[tuple[str, T]] = []
    removed: list[str] = []
    for zone, kinds in due:
        tenant_id, building_id, zone_id = zone.split("|")
        if is_removed(tenant_id, building_id, zone_id):
            removed.append(zone)
        else:
            keep.append((zone, kinds))
    return keep, removed
