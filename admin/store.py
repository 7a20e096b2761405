"""The tenant service's SQL: tenants, buildings, floors, zones and settings, each
change written together with its outbox row in the caller's transaction.

Every function runs inside a transaction scoped to one tenant
(`identity.account_store.tenant_scope`), so RLS confines it; the outbox row is
what makes the change reach the config.* topics (admin/outbox_relay.py).
"""

from __future__ import annotations

from typing import Any

import orjson

from admin.tenant_settings import DEFAULT_SETTINGS, TenantSettings
from identity.account_store import Conn
from streams.topics import CONFIG_TENANT_SETTINGS, CONFIG_ZONES


async def _outbox(
    conn: Conn, tenant_id: str, topic: str, key: str, payload: dict[str, Any] | None
) -> None:
    await conn.execute(
        "INSERT INTO sbp.outbox (tenant_id, topic, record_key, payload)"
        " VALUES (%s, %s, %s, %s::jsonb)",
        (tenant_id, topic, key, None if payload is None else orjson.dumps(payload).decode()),
    )


def zone_key(tenant_id: str, building_id: str, zone_id: str) -> str:
    return f"{tenant_id}|{building_id}|{zone_id}"


async def create_tenant(conn: Conn, tenant_id: str, name: str) -> bool:
    cur = await conn.execute(
        "INSERT INTO sbp.tenants (tenant_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
        (tenant_id, name),
    )
    if cur.rowcount != 1:
        return False
    # The tenant's own schema, with every tenant migration, in the same transaction:
    # a tenant that exists always has its tables.
    await conn.execute("SELECT sbp.provision_tenant_schema(%s)", (tenant_id,))
    await put_settings(conn, tenant_id, DEFAULT_SETTINGS, expected_version=0)
    return True


async def get_tenant(conn: Conn, tenant_id: str) -> dict[str, Any] | None:
    cur = await conn.execute(
        "SELECT name, created_at FROM sbp.tenants WHERE tenant_id = %s", (tenant_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return {"tenantId": tenant_id, "name": row[0], "createdAt": row[1].isoformat()}


async def create_building(conn: Conn, tenant_id: str, building_id: str, name: str) -> bool:
    cur = await conn.execute(
        "INSERT INTO sbp.buildings (tenant_id, building_id, name) VALUES (%s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (tenant_id, building_id, name),
    )
    return cur.rowcount == 1


async def building_exists(conn: Conn, tenant_id: str, building_id: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM sbp.buildings WHERE tenant_id = %s AND building_id = %s",
        (tenant_id, building_id),
    )
    return await cur.fetchone() is not None


async def list_buildings(conn: Conn, tenant_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT building_id, name FROM sbp.buildings WHERE tenant_id = %s ORDER BY 1",
        (tenant_id,),
    )
    return [{"buildingId": b, "name": n} for b, n in await cur.fetchall()]


async def delete_building(conn: Conn, tenant_id: str, building_id: str) -> bool:
    """Delete the building with its floors and zones; each zone's tombstone goes out."""
    cur = await conn.execute(
        "SELECT zone_id FROM sbp.zones WHERE tenant_id = %s AND building_id = %s",
        (tenant_id, building_id),
    )
    for (zone_id,) in await cur.fetchall():
        await delete_zone(conn, tenant_id, building_id, zone_id)
    cur = await conn.execute(
        "DELETE FROM sbp.buildings WHERE tenant_id = %s AND building_id = %s",
        (tenant_id, building_id),
    )
    return cur.rowcount == 1


async def create_floor(
    conn: Conn, tenant_id: str, building_id: str, floor_id: str, name: str
) -> bool:
    cur = await conn.execute(
        "INSERT INTO sbp.floors (tenant_id, building_id, floor_id, name) VALUES (%s, %s, %s, %s)"
        " ON CONFLICT DO NOTHING",
        (tenant_id, building_id, floor_id, name),
    )
    return cur.rowcount == 1


async def floor_exists(conn: Conn, tenant_id: str, building_id: str, floor_id: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM sbp.floors WHERE tenant_id = %s AND building_id = %s AND floor_id = %s",
        (tenant_id, building_id, floor_id),
    )
    return await cur.fetchone() is not None


async def create_zone(
    conn: Conn, tenant_id: str, building_id: str, floor_id: str, zone_id: str, name: str
) -> bool:
    cur = await conn.execute(
        "INSERT INTO sbp.zones (tenant_id, building_id, floor_id, zone_id, name)"
        " VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (tenant_id, building_id, floor_id, zone_id, name),
    )
    if cur.rowcount != 1:
        return False
    await _outbox(
        conn,
        tenant_id,
        CONFIG_ZONES.name,
        zone_key(tenant_id, building_id, zone_id),
        {
            "tenantId": tenant_id,
            "buildingId": building_id,
            "floorId": floor_id,
            "zoneId": zone_id,
            "name": name,
        },
    )
    return True


async def list_zones(conn: Conn, tenant_id: str, building_id: str) -> list[dict[str, Any]]:
    cur = await conn.execute(
        "SELECT floor_id, zone_id, name FROM sbp.zones"
        " WHERE tenant_id = %s AND building_id = %s ORDER BY 1, 2",
        (tenant_id, building_id),
    )
    return [{"floorId": f, "zoneId": z, "name": n} for f, z, n in await cur.fetchall()]


async def delete_zone(conn: Conn, tenant_id: str, building_id: str, zone_id: str) -> bool:
    cur = await conn.execute(
        "DELETE FROM sbp.zones WHERE tenant_id = %s AND building_id = %s AND zone_id = %s",
        (tenant_id, building_id, zone_id),
    )
    if cur.rowcount != 1:
        return False
    await _outbox(
        conn, tenant_id, CONFIG_ZONES.name, zone_key(tenant_id, building_id, zone_id), None
    )
    return True


async def get_settings(conn: Conn, tenant_id: str) -> tuple[int, TenantSettings]:
    cur = await conn.execute(
        "SELECT version, settings FROM sbp.tenant_settings WHERE tenant_id = %s", (tenant_id,)
    )
    row = await cur.fetchone()
    if row is None:
        return 0, DEFAULT_SETTINGS
    return row[0], TenantSettings.model_validate(row[1])


async def put_settings(
    conn: Conn, tenant_id: str, settings: TenantSettings, expected_version: int
) -> int | None:
    """Store `settings` as the next version if the current one is `expected_version`;
    returns the new version, or None if another change came first."""
    document = settings.to_json()
    if expected_version == 0:
        cur = await conn.execute(
            "INSERT INTO sbp.tenant_settings (tenant_id, version, settings)"
            " VALUES (%s, 1, %s::jsonb) ON CONFLICT DO NOTHING",
            (tenant_id, orjson.dumps(document).decode()),
        )
    else:
        cur = await conn.execute(
            "UPDATE sbp.tenant_settings SET version = version + 1, settings = %s::jsonb,"
            " updated_at = now() WHERE tenant_id = %s AND version = %s",
            (orjson.dumps(document).decode(), tenant_id, expected_version),
        )
    if cur.rowcount != 1:
        return None
    version = expected_version + 1
    await _outbox(
        conn,
        tenant_id,
        CONFIG_TENANT_SETTINGS.name,
        tenant_id,
        {"tenantId": tenant_id, "version": version, **document},
    )
    return version
