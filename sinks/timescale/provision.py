"""Database provisioning that needs the superuser: roles, the database, extensions.

The owner role owns every object and runs migrations; the application role is
not a superuser, has no BYPASSRLS, owns nothing, and gets only what the
migrations grant. Idempotent: roles are altered back to these attributes if
someone changed them.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
from psycopg import sql

from sbp.settings import PG_SERVICE_ROLES, Settings


def bootstrap_database(settings: Settings, superuser_dsn: Callable[[str], str]) -> None:
    """Create the owner, application and service roles and the database, idempotently."""
    with psycopg.connect(superuser_dsn("postgres"), autocommit=True) as conn:
        for role, password in (
            settings.pg_credentials(name) for name in ("owner", "app", *PG_SERVICE_ROLES)
        ):
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone()
            verb = sql.SQL("ALTER") if exists else sql.SQL("CREATE")
            conn.execute(
                sql.SQL(
                    "{} ROLE {} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE PASSWORD {}"
                ).format(verb, sql.Identifier(role), sql.Literal(password))
            )
        db = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.pg_database,)
        ).fetchone()
        if not db:
            conn.execute(
                sql.SQL("CREATE DATABASE {} OWNER {}").format(
                    sql.Identifier(settings.pg_database), sql.Identifier(settings.pg_owner_user)
                )
            )
    with psycopg.connect(superuser_dsn(settings.pg_database), autocommit=True) as conn:
        # Extensions need a superuser; the owner's migrations then only use them.
        available = conn.execute(
            "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
        ).fetchone()
        if available:
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
        conn.execute(
            sql.SQL(
                "REVOKE ALL ON SCHEMA public FROM PUBLIC; REVOKE ALL ON DATABASE {} FROM PUBLIC"
            ).format(sql.Identifier(settings.pg_database))
        )
        for name in ("app", *PG_SERVICE_ROLES):
            conn.execute(
                sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                    sql.Identifier(settings.pg_database),
                    sql.Identifier(settings.pg_credentials(name)[0]),
                )
            )
        for name in ("app", "sink"):
            conn.execute(
                # TEMPORARY: the sink COPYs into temp tables (COPY into an RLS table is
                # refused); no other service needs it.
                sql.SQL("GRANT TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(settings.pg_database),
                    sql.Identifier(settings.pg_credentials(name)[0]),
                )
            )


BACKFILL_STEP = "config_outbox_backfill_v1"


def backfill_config_outbox(superuser_dsn: str, default_settings: dict[str, object]) -> int:
    """Once per database: give the zones written before the tenant service existed their
    tenant, building and floor rows, default settings, and outbox records, so the
    config topics start complete. Needs the superuser, because RLS is forced on the
    owner too and only a superuser sees every tenant's rows. Returns the zones queued."""
    settings_json = json.dumps(default_settings)
    with psycopg.connect(superuser_dsn) as conn, conn.transaction():
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.provisioning_steps"
            " (name text PRIMARY KEY, done_at timestamptz NOT NULL DEFAULT now())"
        )
        done = conn.execute(
            "SELECT 1 FROM public.provisioning_steps WHERE name = %s", (BACKFILL_STEP,)
        ).fetchone()
        if done:
            return 0
        conn.execute(
            "INSERT INTO sbp.tenants (tenant_id, name)"
            " SELECT DISTINCT tenant_id, tenant_id FROM sbp.zones ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO sbp.buildings (tenant_id, building_id, name)"
            " SELECT DISTINCT tenant_id, building_id, building_id FROM sbp.zones"
            " ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO sbp.floors (tenant_id, building_id, floor_id, name)"
            " SELECT DISTINCT tenant_id, building_id, floor_id, floor_id FROM sbp.zones"
            " ON CONFLICT DO NOTHING"
        )
        conn.execute(
            "INSERT INTO sbp.tenant_settings (tenant_id, version, settings)"
            " SELECT tenant_id, 1, %s::jsonb FROM sbp.tenants ON CONFLICT DO NOTHING",
            (settings_json,),
        )
        conn.execute(
            "INSERT INTO sbp.outbox (tenant_id, topic, record_key, payload)"
            " SELECT tenant_id, 'config.tenant-settings', tenant_id,"
            " settings || jsonb_build_object('tenantId', tenant_id, 'version', version)"
            " FROM sbp.tenant_settings"
        )
        cur = conn.execute(
            "INSERT INTO sbp.outbox (tenant_id, topic, record_key, payload)"
            " SELECT tenant_id, 'config.zones', tenant_id || '|' || building_id || '|' || zone_id,"
            " jsonb_build_object('tenantId', tenant_id, 'buildingId', building_id,"
            " 'floorId', floor_id, 'zoneId', zone_id, 'name', name)"
            " FROM sbp.zones ORDER BY tenant_id, building_id, zone_id"
        )
        queued = cur.rowcount
        conn.execute("INSERT INTO public.provisioning_steps (name) VALUES (%s)", (BACKFILL_STEP,))
    return queued
