"""The seeded configuration: a demo tenant for newcomers, and zones for tests.

Seeding goes through the tenant service's own store (admin/store.py), the code the
admin API runs: each row is written with its outbox row, so the gateways learn the
zones from the config topics exactly as they learn an admin's changes. Idempotent:
what exists is left as it is.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

import psycopg

from admin import store
from identity.account_store import tenant_scope
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
    """Create the tenant, building, floors and (floor, zone, name) zones that are
    missing; returns how many zones were new."""
    rows = list(zones)

    async def seed() -> int:
        conn = await psycopg.AsyncConnection.connect(settings.pg_dsn("admin"))
        async with conn, conn.transaction():
            await tenant_scope(conn, tenant_id)
            await store.create_tenant(conn, tenant_id, tenant_id)
            await store.create_building(conn, tenant_id, building_id, building_id)
            for floor_id in sorted({floor for floor, _zone, _name in rows}):
                await store.create_floor(conn, tenant_id, building_id, floor_id, floor_id)
            created = 0
            for floor_id, zone_id, name in rows:
                created += await store.create_zone(
                    conn, tenant_id, building_id, floor_id, zone_id, name
                )
            return created

    return asyncio.run(seed())


def seed_demo(settings: Settings) -> int:
    return seed_zones(settings, DEMO_TENANT, DEMO_BUILDING, DEMO_ZONES)
