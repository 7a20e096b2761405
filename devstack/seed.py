"""The seeded zone registry: a demo tenant for newcomers, and zones for tests.

`sbp dev up` seeds the demo tenant idempotently; tests call `seed_zones` for
their own tenants. Rows are written as the application role under the
tenant's RLS setting, like every other tenant write.
"""

from __future__ import annotations

from collections.abc import Iterable

import psycopg

from sbp.settings import Settings

DEMO_TENANT = "demo"
DEMO_BUILDING = "hq"
DEMO_ZONES = (
    ("3F", "3F-East", "Third floor, east wing"),
    ("3F", "3F-West", "Third floor, west wing"),
    ("4F", "4F-North", "Fourth floor, north open space"),
    ("4F", "4F-South", "Fourth floor, south meeting rooms"),
)


def seed_zones(
    settings: Settings,
    tenant_id: str,
    building_id: str,
    zones: Iterable[tuple[str, str, str]],
) -> int:
    """Insert (floor, zone, name) rows that are missing; returns how many were new."""
    rows = [(tenant_id, building_id, floor, zone, name) for floor, zone, name in zones]
    with psycopg.connect(settings.pg_dsn("app")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO sbp.zones (tenant_id, building_id, floor_id, zone_id, name)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                rows,
            )
            return cur.rowcount if cur.rowcount >= 0 else 0


def seed_demo(settings: Settings) -> int:
    return seed_zones(settings, DEMO_TENANT, DEMO_BUILDING, DEMO_ZONES)
