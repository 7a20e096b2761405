"""Versioned, idempotent SQL migrations: the platform's, then every tenant's.

Platform migrations are `migrations/NNNN_name.sql`, applied in order, each in its
own transaction, as the owner role (so the owner owns every object and the other
roles own nothing), and recorded in `public.schema_migrations`.

Tenant migrations are `tenant_migrations/NNNN_name.sql`: what each tenant's own
schema holds (brief §4). The runner copies them into `public.tenant_migrations`,
then has `sbp.provision_tenant_schema` apply the missing ones to every tenant, one
tenant per transaction. The same function applies them all to a new tenant's schema
when the tenant service creates it, so there is one way a tenant schema is built.

A file may say `{{app_role}}`, `{{gateway_role}}`, `{{admin_role}}`,
`{{registry_role}}`, `{{sink_role}}` or `{{replay_role}}` where it grants to that role; the runner
substitutes the quoted role name. An applied file whose content later changes is
refused, not re-run.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
TENANT_MIGRATIONS_DIR = Path(__file__).resolve().parent / "tenant_migrations"


class MigrationDrift(RuntimeError):
    """An applied migration's file was edited after it ran; add a new one instead."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    text: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def load_migrations(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        number, _, name = path.stem.partition("_")
        found.append(Migration(int(number), name, path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate migration numbers in {directory}")
    return found


def render(migration: Migration, roles: dict[str, str]) -> str:
    """Substitute each `{{<name>_role}}` with the quoted role name."""
    text = migration.text
    for name, role in roles.items():
        text = text.replace("{{" + name + "_role}}", sql.Identifier(role).as_string())
    return text


def migrate(
    owner_dsn: str,
    roles: dict[str, str],
    directory: Path = MIGRATIONS_DIR,
    tenant_directory: Path = TENANT_MIGRATIONS_DIR,
) -> list[str]:
    """Apply pending platform migrations, then bring every tenant schema up to date;
    returns the platform migrations applied by this call."""
    applied = _migrate_platform(owner_dsn, roles, directory)
    _migrate_tenants(owner_dsn, roles, tenant_directory)
    return applied


def _migrate_platform(owner_dsn: str, roles: dict[str, str], directory: Path) -> list[str]:
    applied_now: list[str] = []
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS public.schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        for migration in load_migrations(directory):
            with conn.transaction():
                # One runner at a time: a second `dev up` waits instead of racing.
                conn.execute("SELECT pg_advisory_xact_lock(727274)")
                row = conn.execute(
                    "SELECT checksum FROM public.schema_migrations WHERE version = %s",
                    (migration.version,),
                ).fetchone()
                if row is not None:
                    if row[0] != migration.checksum:
                        raise MigrationDrift(
                            f"migration {migration.version}_{migration.name} changed after it "
                            "was applied; write a new migration instead"
                        )
                    continue
                conn.execute(render(migration, roles).encode())
                conn.execute(
                    "INSERT INTO public.schema_migrations (version, name, checksum)"
                    " VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                applied_now.append(f"{migration.version:04d}_{migration.name}")
    return applied_now


def _migrate_tenants(owner_dsn: str, roles: dict[str, str], directory: Path) -> dict[str, int]:
    """Copy the tenant migrations in, then apply what each tenant schema lacks; returns
    the migrations applied per tenant (only tenants that lacked one)."""
    migrations = load_migrations(directory)
    applied: dict[str, int] = {}
    if not migrations:
        return applied  # a release before per-tenant schemas (used by the upgrade test)
    with psycopg.connect(owner_dsn, autocommit=True) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(727274)")
            for migration in migrations:
                row = conn.execute(
                    "SELECT checksum FROM public.tenant_migrations WHERE version = %s",
                    (migration.version,),
                ).fetchone()
                if row is not None and row[0] != migration.checksum:
                    raise MigrationDrift(
                        f"tenant migration {migration.version}_{migration.name} changed after"
                        " it was applied; write a new migration instead"
                    )
                # The body is rewritten every run, so a renamed service role is granted
                # to by the schemas made from now on.
                conn.execute(
                    "INSERT INTO public.tenant_migrations (version, name, checksum, body)"
                    " VALUES (%s, %s, %s, %s) ON CONFLICT (version) DO UPDATE"
                    " SET body = EXCLUDED.body",
                    (
                        migration.version,
                        migration.name,
                        migration.checksum,
                        render(migration, roles),
                    ),
                )
        behind = conn.execute(
            "SELECT t.tenant_id FROM sbp.tenants t"
            " LEFT JOIN public.tenant_schemas s USING (tenant_id)"
            " WHERE (SELECT count(*) FROM public.tenant_schema_versions v"
            "        WHERE v.schema_name = s.schema_name)"
            "     < (SELECT count(*) FROM public.tenant_migrations)"
            " ORDER BY t.tenant_id"
        ).fetchall()
        for (tenant_id,) in behind:
            with conn.transaction():
                row = conn.execute(
                    "SELECT sbp.provision_tenant_schema(%s)", (tenant_id,)
                ).fetchone()
            applied[tenant_id] = int(row[0]) if row else 0
    return applied
