"""The live publisher's events: snapshots that name the zone's floor, removals of
deleted zones, and deleted zones kept out of a flush."""

from __future__ import annotations

from datetime import UTC, datetime

from streams.tables.comfort_buckets import epoch_minute
from streams.tables.live_buckets import LiveBuckets
from streams.tables.live_events import snapshot, split_removed, zone_removed
from streams.tables.tenant_config import Removal, Zone

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
M = epoch_minute(NOW)


def bucket(*values: int) -> dict[str, object]:
    return {
        "v": {str(v): values.count(v) for v in set(values)},
        "p": {},
        "u": [f"u{i}" for i in range(len(values))],
        "uo": 0,
        "r": 0,
        "h": 1,
        "x": 0,
    }


def test_a_snapshot_names_the_zones_floor_and_name() -> None:
    live = LiveBuckets()
    snap = snapshot(
        "acme|hq|east", {"thermal": {M: bucket(2, -1)}}, NOW, live.windows, Zone("f3", "East")
    )
    assert {k: v for k, v in snap.items() if k != "kinds"} == {
        "type": "aggregate",
        "tenantId": "acme",
        "buildingId": "hq",
        "zoneId": "east",
        "floorId": "f3",
        "zoneName": "East",
        "asOf": NOW.isoformat(),
        "asOfMinute": M,
    }
    assert snap["kinds"]["thermal"]["5m"]["n"] == 2


def test_a_zone_the_view_does_not_know_yet_has_null_floor_and_name() -> None:
    snap = snapshot("acme|hq|east", {}, NOW, LiveBuckets().windows, None)
    assert (snap["floorId"], snap["zoneName"]) == (None, None)


def test_a_removal_event_names_the_zone_and_when_it_was_deleted() -> None:
    removal = Removal(("acme", "hq", "east"), 7, NOW.timestamp())
    assert zone_removed(removal) == {
        "type": "zone_removed",
        "tenantId": "acme",
        "buildingId": "hq",
        "zoneId": "east",
        "removedAt": "2026-03-10T12:00:30+00:00",
    }


def test_deleted_zones_are_split_from_the_zones_to_publish() -> None:
    due = [("acme|hq|east", 1), ("acme|hq|west", 2), ("globex|hq|east", 3)]
    deleted = {("acme", "hq", "east")}
    keep, removed = split_removed(due, lambda t, b, z: (t, b, z) in deleted)
    assert keep == [("acme|hq|west", 2), ("globex|hq|east", 3)]
    assert removed == ["acme|hq|east"]


def test_a_dropped_zone_is_never_due_again_until_new_buckets_come() -> None:
    live = LiveBuckets()
    live.put(3, "acme|hq|east", "thermal", M - 1, bucket(1))
    live.put(3, "acme|hq|west", "thermal", M, bucket(2))
    for zone, kinds in live.due(M, 10):
        snapshot(zone, kinds, NOW, live.windows, None)  # as a publish keeps the window sums
    live.put(3, "acme|hq|east", "thermal", M, bucket(1, 1))
    assert "acme|hq|east" in live.windows.pasts

    assert live.drop_zone("acme|hq|east")
    assert not live.drop_zone("acme|hq|east")

    assert live.due(M, 10) == []
    # A new minute makes every zone with live buckets due again, but not the dropped one.
    assert [zone for zone, _ in live.due(M + 1, 10)] == ["acme|hq|west"]
    assert "acme|hq|east" not in live.windows.pasts
