"""Every tenant's configuration as built from config-topic records: zones, their
tombstones and the removals they leave, and per-tenant settings."""

from __future__ import annotations

from typing import Any

import pytest

from admin.tenant_settings import DEFAULT_SETTINGS
from streams.tables.tenant_config import (
    REMOVED_ZONE_MEMORY_S,
    Removal,
    TenantConfig,
    Zone,
    parse_zone_key,
)

T0 = 1_790_000_000.0


def zone_record(tenant: str, building: str, floor: str, zone: str, name: str) -> dict[str, Any]:
    return {
        "tenantId": tenant,
        "buildingId": building,
        "floorId": floor,
        "zoneId": zone,
        "name": name,
    }


def settings_record(tenant: str, version: int = 1, **changes: Any) -> dict[str, Any]:
    """A whole settings record as the relay publishes it: every field, plus version."""
    return {"tenantId": tenant, "version": version, **DEFAULT_SETTINGS.to_json(), **changes}


def test_zones_keep_their_floor_and_name_per_building() -> None:
    config = TenantConfig()
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f3", "east", "East"), T0)
    config.apply_zone(b"acme|hq|west", zone_record("acme", "hq", "f3", "west", "West"), T0)
    config.apply_zone(b"acme|annex|lab", zone_record("acme", "annex", "g", "lab", "Lab"), T0)

    assert config.zones_of("acme") == {
        "hq": {"east": Zone("f3", "East"), "west": Zone("f3", "West")},
        "annex": {"lab": Zone("g", "Lab")},
    }
    assert config.zone("acme", "hq", "west") == Zone("f3", "West")
    # Another tenant's ids are not this tenant's.
    assert config.zones_of("globex") is None
    assert config.zone("globex", "hq", "west") is None


def test_a_later_record_replaces_the_zone_whole() -> None:
    config = TenantConfig()
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f3", "east", "East"), T0)
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f4", "east", "East 4"), T0 + 1)
    assert config.zone("acme", "hq", "east") == Zone("f4", "East 4")
    assert config.removals_after(0) == []


def test_a_tombstone_deletes_the_zone_and_is_remembered_as_a_removal() -> None:
    config = TenantConfig()
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f3", "east", "East"), T0)
    config.apply_zone(b"acme|hq|west", zone_record("acme", "hq", "f3", "west", "West"), T0)

    config.apply_zone(b"acme|hq|east", None, T0 + 5)

    assert config.zone("acme", "hq", "east") is None
    assert config.zones_of("acme") == {"hq": {"west": Zone("f3", "West")}}
    assert config.is_removed("acme", "hq", "east")
    assert not config.is_removed("acme", "hq", "west")
    assert config.removals_after(0) == [Removal(("acme", "hq", "east"), 1, T0 + 5)]


def test_a_tenant_whose_zones_are_all_deleted_stays_known_with_none() -> None:
    config = TenantConfig()
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f3", "east", "East"), T0)
    config.apply_zone(b"acme|hq|east", None, T0 + 1)
    # Known and empty, not unknown: the gateway must not fall back to another source.
    assert config.zones_of("acme") == {}


def test_a_tombstone_of_a_zone_never_seen_still_counts_as_its_removal() -> None:
    # Compaction may have dropped the zone's record and kept only its tombstone.
    config = TenantConfig()
    config.apply_zone(b"acme|hq|gone", None, T0)
    assert config.zones_of("acme") == {}
    assert config.is_removed("acme", "hq", "gone")


def test_removals_come_in_order_after_the_last_one_handled() -> None:
    config = TenantConfig()
    for i, zone in enumerate(("a", "b", "c")):
        config.apply_zone(f"acme|hq|{zone}", None, T0 + i)
    first = config.removals_after(0)
    assert [r.zone[2] for r in first] == ["a", "b", "c"]
    assert config.removals_after(first[1].seq) == [first[2]]
    assert config.removals_after(first[2].seq) == []

    # Deleted again later: a new removal, after the others.
    config.apply_zone(b"acme|hq|d", None, T0 + 9)
    config.apply_zone(b"acme|hq|a", None, T0 + 10)
    assert [r.zone[2] for r in config.removals_after(first[2].seq)] == ["d", "a"]


def test_a_recreated_zone_is_no_longer_removed() -> None:
    config = TenantConfig()
    config.apply_zone(b"acme|hq|east", None, T0)
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f1", "east", "East"), T0 + 1)
    assert not config.is_removed("acme", "hq", "east")
    assert config.removals_after(0) == []
    assert config.zone("acme", "hq", "east") == Zone("f1", "East")


def test_removals_are_forgotten_a_day_after_their_tombstone() -> None:
    config = TenantConfig()
    config.apply_zone(b"acme|hq|old", None, T0)
    config.apply_zone(b"acme|hq|new", None, T0 + 3600)

    def forget_at(now_s: float) -> int:
        return config.forget_removals(now_s - REMOVED_ZONE_MEMORY_S)

    assert forget_at(T0 + REMOVED_ZONE_MEMORY_S - 1) == 0
    assert config.is_removed("acme", "hq", "old")
    assert forget_at(T0 + REMOVED_ZONE_MEMORY_S + 1) == 1

    assert not config.is_removed("acme", "hq", "old")
    assert [r.zone for r in config.removals_after(0)] == [("acme", "hq", "new")]


@pytest.mark.parametrize("key", [b"acme|hq", b"acme|hq|east|x", b"acme||east", "|hq|east"])
def test_a_key_that_is_not_a_zone_key_is_refused_and_changes_nothing(key: bytes | str) -> None:
    config = TenantConfig()
    with pytest.raises(ValueError, match="not a zone key"):
        config.apply_zone(key, zone_record("acme", "hq", "f1", "east", "East"), T0)
    assert config.zones_of("acme") is None


def test_a_zone_record_without_floor_or_name_is_refused_and_changes_nothing() -> None:
    config = TenantConfig()
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f3", "east", "East"), T0)
    broken = zone_record("acme", "hq", "f3", "east", "East")
    del broken["floorId"]
    with pytest.raises(ValueError, match="floorId and name"):
        config.apply_zone(b"acme|hq|east", broken, T0 + 1)
    assert config.zone("acme", "hq", "east") == Zone("f3", "East")


def test_parse_zone_key() -> None:
    assert parse_zone_key(b"t-1|b_2|z-3") == ("t-1", "b_2", "z-3")


def test_settings_are_validated_and_replace_the_tenants_whole() -> None:
    config = TenantConfig()
    assert config.settings_of("acme") == DEFAULT_SETTINGS

    config.apply_settings(b"acme", settings_record("acme", rateCapacity=5, lateAfterS=60))
    got = config.settings_of("acme")
    assert (got.rate_capacity, got.late_after_s) == (5, 60)
    assert got.too_old_s == DEFAULT_SETTINGS.too_old_s
    assert config.settings_of("globex") == DEFAULT_SETTINGS

    config.apply_settings(b"acme", settings_record("acme", version=2, rateCapacity=7))
    assert config.settings_of("acme").rate_capacity == 7
    assert config.settings_of("acme").late_after_s == DEFAULT_SETTINGS.late_after_s


def test_invalid_settings_are_refused_and_the_last_valid_ones_stay() -> None:
    config = TenantConfig()
    config.apply_settings(b"acme", settings_record("acme", rateCapacity=5))
    with pytest.raises(ValueError, match="lateAfterS must not exceed tooOldS"):
        config.apply_settings(b"acme", settings_record("acme", lateAfterS=7200, tooOldS=3600))
    with pytest.raises(ValueError, match="under key"):
        config.apply_settings(b"acme", settings_record("globex", rateCapacity=9))
    assert config.settings_of("acme").rate_capacity == 5
    assert config.settings_of("globex") == DEFAULT_SETTINGS


def test_a_settings_tombstone_returns_the_tenant_to_the_defaults() -> None:
    config = TenantConfig()
    config.apply_settings("acme", settings_record("acme", rateCapacity=5))
    config.apply_settings("acme", None)
    assert config.settings_of("acme") == DEFAULT_SETTINGS


def test_a_reader_keeps_the_zones_it_was_handed() -> None:
    # What the gateway's zone directory holds while the view's thread moves on.
    config = TenantConfig()
    config.apply_zone(b"acme|hq|east", zone_record("acme", "hq", "f3", "east", "East"), T0)
    handed = config.zones_of("acme")
    config.apply_zone(b"acme|hq|west", zone_record("acme", "hq", "f3", "west", "West"), T0)
    config.apply_zone(b"acme|hq|east", None, T0 + 1)
    assert handed == {"hq": {"east": Zone("f3", "East")}}
    assert config.zones_of("acme") == {"hq": {"west": Zone("f3", "West")}}
