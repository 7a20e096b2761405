"""Which buildings and zones exist in a tenant.

The answer comes from the config view of the `config.zones` topic
(streams/config_view.py) for every tenant that view knows: a zone an admin creates
or deletes takes effect as soon as its record arrives, with no restart. A tenant the
view has not seen yet (its zones were just written and not relayed yet, or the
view is still catching up at start) is read from `sbp.zones` and cached briefly.

Every lookup is scoped to the token's tenant (the query runs under that
tenant's RLS setting), so another tenant's zone is indistinguishable from one
that does not exist. While PostgreSQL is unreachable a tenant's last known
zones keep serving; a tenant never seen before gets `DirectoryUnavailable`
(503), never a guess.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import psycopg

from sinks.timescale.connection import ReconnectingConnection
from streams.config_view import ConfigView

log = logging.getLogger(__name__)


class DirectoryUnavailable(RuntimeError):
    """The zone registry cannot be read and nothing is cached for this tenant."""


@dataclass(frozen=True)
class TenantZones:
    # buildingId → its zone ids (the config view's zones by id serve as they are)
    zones_by_building: Mapping[str, Collection[str]]

    def has_building(self, building_id: str) -> bool:
        return building_id in self.zones_by_building

    def has_zone(self, building_id: str, zone_id: str) -> bool:
        return zone_id in self.zones_by_building.get(building_id, ())


class ZoneDirectory:
    def __init__(
        self, db: ReconnectingConnection, config: ConfigView | None = None, ttl_s: float = 5.0
    ) -> None:
        self._db = db
        self._config = config
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, TenantZones]] = {}

    async def for_tenant(self, tenant_id: str) -> TenantZones:
        if self._config is not None and self._config.ready.is_set():
            known = self._config.zones_of(tenant_id)
            if known is not None:
                return TenantZones(known)
        now = time.monotonic()
        hit = self._cache.get(tenant_id)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        try:
            rows = await self._read(tenant_id)
        except psycopg.OperationalError:
            # Most often a connection PostgreSQL dropped (a restart): the connection is
            # made again on the next use, so one more attempt answers right away.
            try:
                rows = await self._read(tenant_id)
            except psycopg.Error as exc:
                return self._unreadable(tenant_id, hit, exc)
        except psycopg.Error as exc:
            return self._unreadable(tenant_id, hit, exc)
        grouped: dict[str, set[str]] = {}
        for building_id, zone_id in rows:
            grouped.setdefault(building_id, set()).add(zone_id)
        zones = TenantZones({b: frozenset(z) for b, z in grouped.items()})
        self._cache[tenant_id] = (now, zones)
        return zones

    async def _read(self, tenant_id: str) -> list[tuple[str, str]]:
        async with self._db.transaction() as conn:
            await conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            cur = await conn.execute("SELECT building_id, zone_id FROM sbp.zones")
            return await cur.fetchall()

    @staticmethod
    def _unreadable(
        tenant_id: str, hit: tuple[float, TenantZones] | None, exc: psycopg.Error
    ) -> TenantZones:
        if hit is not None:
            log.warning(
                "zone registry unreachable for %s, serving cached zones: %s", tenant_id, exc
            )
            return hit[1]
        raise DirectoryUnavailable(str(exc)) from exc
