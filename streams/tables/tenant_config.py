"""Every tenant's latest configuration, as the config topics tell it. Pure.

The config view (streams/config_view.py) feeds it every record of `config.zones`
(key `tenantId|buildingId|zoneId`; a tombstone deletes the zone) and of
`config.tenant-settings` (key `tenantId`; a tombstone returns the tenant to the
platform's defaults), in topic order, from one thread; any thread may read it.

Invariants:
- Readers need no lock: the writer changes the top-level dicts one item at a
  time (an assignment, atomic in CPython), replaces the removals dict whole
  (readers iterate it), and never changes a value after it was handed out.
- A tenant is *known* once any zone record of it was read. From then on its
  zones here are the whole truth, deletions included: a known tenant whose
  zones were all deleted has an empty mapping, not None.
- A deleted zone is remembered as removed for REMOVED_ZONE_MEMORY_S after its
  tombstone was written, then forgotten, so memory is one entry per live zone
  and tenant plus the deletions of the last day. Each removal gets a sequence
  number, so a reader can ask for the removals it has not handled yet.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from admin.tenant_settings import DEFAULT_SETTINGS, TenantSettings, parse_settings

# One day: the broker's default `delete.retention.ms`, so a process started later
# still reads the tombstone and remembers the same removals as one that saw it live;
# and far longer than any live bucket of the zone can outlive its deletion (65 min).
REMOVED_ZONE_MEMORY_S = 24 * 3600.0

ZoneRef = tuple[str, str, str]  # (tenantId, buildingId, zoneId)
# buildingId → zoneId → zone
TenantZones = Mapping[str, Mapping[str, "Zone"]]


@dataclass(frozen=True)
class Zone:
    floor_id: str
    name: str


@dataclass(frozen=True)
class Removal:
    """A zone whose latest record is a tombstone written at `at_s` (epoch seconds)."""

    zone: ZoneRef
    seq: int
    at_s: float


def parse_zone_key(key: bytes | str) -> ZoneRef:
    """`tenantId|buildingId|zoneId` → its three ids; ValueError for any other shape."""
    text = key.decode() if isinstance(key, bytes) else key
    parts = text.split("|")
    if len(parts) != 3 or not all(parts):
        raise ValueError(f"not a zone key: {text!r}")
    return parts[0], parts[1], parts[2]


class TenantConfig:
    def __init__(self) -> None:
        self._zones: dict[str, dict[str, dict[str, Zone]]] = {}
        self._settings: dict[str, TenantSettings] = {}
        self._removed: dict[ZoneRef, Removal] = {}
        self._seq = 0

    # --- reading (any thread) ---------------------------------------------

    def zones_of(self, tenant_id: str) -> TenantZones | None:
        """The tenant's zones by building, or None while no zone record of it was read."""
        return self._zones.get(tenant_id)

    def zone(self, tenant_id: str, building_id: str, zone_id: str) -> Zone | None:
        return self._zones.get(tenant_id, {}).get(building_id, {}).get(zone_id)

    def is_removed(self, tenant_id: str, building_id: str, zone_id: str) -> bool:
        return (tenant_id, building_id, zone_id) in self._removed

    def removals_after(self, seq: int) -> list[Removal]:
        """Removals still remembered with a sequence number above `seq`, oldest first."""
        return [r for r in self._removed.values() if r.seq > seq]

    def settings_of(self, tenant_id: str) -> TenantSettings:
        return self._settings.get(tenant_id, DEFAULT_SETTINGS)

    # --- applying records (one thread) ------------------------------------

    def apply_zone(self, key: bytes | str, record: Mapping[str, Any] | None, at_s: float) -> None:
        """A config.zones record: the zone's whole state, or None for its tombstone."""
        tenant_id, building_id, zone_id = ref = parse_zone_key(key)
        zone = None if record is None else _zone_of(record)
        buildings = dict(self._zones.get(tenant_id, {}))
        zones = dict(buildings.get(building_id, {}))
        if zone is None:
            zones.pop(zone_id, None)
        else:
            zones[zone_id] = zone
        if zones:
            buildings[building_id] = zones
        else:
            buildings.pop(building_id, None)
        self._zones[tenant_id] = buildings
        if zone is None or ref in self._removed:
            removed = dict(self._removed)
            # Re-inserted at the end: the dict stays in sequence order.
            removed.pop(ref, None)
            if zone is None:
                self._seq += 1
                removed[ref] = Removal(ref, self._seq, at_s)
            self._removed = removed

    def apply_settings(self, key: bytes | str, record: Mapping[str, Any] | None) -> None:
        """A config.tenant-settings record; ValueError (nothing changed) if it is invalid."""
        tenant_id = key.decode() if isinstance(key, bytes) else key
        if record is None:
            self._settings.pop(tenant_id, None)
            return
        document = {k: v for k, v in record.items() if k not in ("tenantId", "version")}
        if record.get("tenantId", tenant_id) != tenant_id:
            raise ValueError(f"settings of {record.get('tenantId')!r} under key {tenant_id!r}")
        self._settings[tenant_id] = parse_settings(document)

    def forget_removals(self, written_before_s: float) -> int:
        """Forget removals whose tombstone is older than `written_before_s`; how many."""
        keep = {ref: r for ref, r in self._removed.items() if r.at_s >= written_before_s}
        forgotten = len(self._removed) - len(keep)
        if forgotten:
            self._removed = keep
        return forgotten


def _zone_of(record: Mapping[str, Any]) -> Zone:
    floor_id, name = record.get("floorId"), record.get("name")
    if not isinstance(floor_id, str) or not isinstance(name, str):
        raise ValueError("a zone record needs string floorId and name")
    return Zone(floor_id, name)
