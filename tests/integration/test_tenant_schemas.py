"""One schema per tenant (brief §4): made with the tenant, every tenant migration applied
to every tenant schema, earlier votes moved in, drift refused.

Each test runs the real migration runner against a scratch database of the stack's
PostgreSQL, so it can add a tenant migration or start from an older release without
touching the database the other tests use.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from devstack import postgres
from sbp.settings import PG_SERVICE_ROLES, Settings
from sinks.timescale.migrate import (
    MIGRATIONS_DIR,
    TENANT_MIGRATIONS_DIR,
    MigrationDrift,
    migrate,
)
from sinks.timescale.provision import bootstrap_database


@pytest.fixture
def scratch(stack: Settings) -> Iterator[Settings]:
    name = f"sbp_scratch_{uuid.uuid4().hex[:10]}"
    settings = stack.model_copy(update={"pg_database": name})
    bootstrap_database(settings, lambda db: postgres.superuser_dsn(settings, db))
    yield settings
    with psycopg.connect(postgres.superuser_dsn(stack), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


def _roles(settings: Settings) -> dict[str, str]:
    return {name: settings.pg_credentials(name)[0] for name in ("app", *PG_SERVICE_ROLES)}


def _dirs(tmp_path: Path, platform_upto: int | None = None) -> tuple[Path, Path]:
    """Copies of the platform and tenant migrations (platform ones up to a version)."""
    platform, tenant = tmp_path / "platform", tmp_path / "tenant"
    platform.mkdir(parents=True)
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        if platform_upto is None or int(path.name[:4]) <= platform_upto:
            shutil.copy(path, platform)
    shutil.copytree(TENANT_MIGRATIONS_DIR, tenant)
    return platform, tenant


def _create_tenant(settings: Settings, tenant_id: str) -> int:
    """As the tenant service does: the tenant row, then its schema, in one transaction."""
    with psycopg.connect(settings.pg_dsn("admin")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        conn.execute("INSERT INTO sbp.tenants (tenant_id, name) VALUES (%s, 'x')", (tenant_id,))
        row = conn.execute("SELECT sbp.provision_tenant_schema(%s)", (tenant_id,)).fetchone()
        return int(row[0]) if row else -1


def _owner_rows(settings: Settings, query: str, *args: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(settings.pg_dsn("owner")) as conn:
        return conn.execute(query.encode(), args).fetchall()


def _tables(settings: Settings, schema: str) -> set[str]:
    rows = _owner_rows(settings, "SELECT tablename FROM pg_tables WHERE schemaname = %s", schema)
    return {r[0] for r in rows}


def test_a_new_tenant_gets_its_schema_with_every_tenant_migration(
    scratch: Settings, tmp_path: Path
) -> None:
    platform, tenant_dir = _dirs(tmp_path)
    migrate(scratch.pg_dsn("owner"), _roles(scratch), platform, tenant_dir)
    assert _create_tenant(scratch, "acme") == len(list(TENANT_MIGRATIONS_DIR.glob("*.sql")))
    tables = _tables(scratch, "t_acme")
    assert {"votes", "votes_default"} <= tables
    # Last month to two months ahead are partitions already.
    assert len({t for t in tables if t.startswith("votes_2")}) == 4
    # Creating it again (a retried request) changes nothing.
    with psycopg.connect(scratch.pg_dsn("admin")) as conn:
        again = conn.execute("SELECT sbp.provision_tenant_schema('acme')").fetchone()
    assert again == (0,)


def test_a_release_with_a_new_tenant_migration_reaches_every_tenant(
    scratch: Settings, tmp_path: Path
) -> None:
    platform, tenant_dir = _dirs(tmp_path)
    migrate(scratch.pg_dsn("owner"), _roles(scratch), platform, tenant_dir)
    long_id = "L" * 64  # too long for `t_<id>`: hashed into 63 bytes
    for tenant_id in ("acme", "Acme", long_id):
        _create_tenant(scratch, tenant_id)
    schemas = dict(_owner_rows(scratch, "SELECT tenant_id, schema_name FROM public.tenant_schemas"))
    assert schemas["acme"] == "t_acme" and schemas["Acme"] == "t_Acme"
    assert schemas[long_id].startswith("h_") and len(schemas[long_id]) == 63

    (tenant_dir / "9001_extra.sql").write_text(
        "CREATE TABLE {{schema}}.extra (tenant_id text NOT NULL CHECK (tenant_id = {{tenant}}));"
        "\nSELECT sbp.isolate_table({{schema_name}}, 'extra');"
        "\nGRANT SELECT ON {{schema}}.extra TO {{app_role}};"
    )
    migrate(scratch.pg_dsn("owner"), _roles(scratch), platform, tenant_dir)
    for schema in schemas.values():
        assert "extra" in _tables(scratch, schema), schema
    versions = _owner_rows(
        scratch,
        "SELECT schema_name, count(*) FROM public.tenant_schema_versions GROUP BY 1",
    )
    expected = len(list(tenant_dir.glob("*.sql")))
    assert dict(versions) == {schema: expected for schema in schemas.values()}
    # A tenant created after the release gets the new migration too.
    _create_tenant(scratch, "later")
    assert "extra" in _tables(scratch, "t_later")
    # The app role got its grant, RLS holds on the new table, and the CHECK ties it to
    # its tenant.
    with psycopg.connect(scratch.pg_dsn("app")) as conn:
        assert conn.execute('SELECT count(*) FROM "t_later".extra').fetchone() == (0,)


def test_an_edited_tenant_migration_is_refused(scratch: Settings, tmp_path: Path) -> None:
    platform, tenant_dir = _dirs(tmp_path)
    migrate(scratch.pg_dsn("owner"), _roles(scratch), platform, tenant_dir)
    first = sorted(tenant_dir.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited after release\n")
    with pytest.raises(MigrationDrift, match="tenant migration"):
        migrate(scratch.pg_dsn("owner"), _roles(scratch), platform, tenant_dir)


def test_upgrading_moves_a_tenants_earlier_votes_into_its_schema(
    scratch: Settings, tmp_path: Path
) -> None:
    # The release before per-tenant schemas: votes of every tenant in sbp.votes.
    old_platform, tenant_dir = _dirs(tmp_path, platform_upto=6)
    migrate(scratch.pg_dsn("owner"), _roles(scratch), old_platform, tmp_path / "none")
    now = datetime.now(UTC)
    with psycopg.connect(scratch.pg_dsn("app")) as conn:
        # Partitions of the shared table (the old sink made them at start).
        with psycopg.connect(scratch.pg_dsn("sink")) as sink:
            sink.execute("SELECT sbp.ensure_vote_partitions(%s::date, 2)", (now.date(),))
        for tenant_id, votes in (("acme", 3), ("orphan", 2)):
            with conn.transaction():
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
                for _ in range(votes):
                    conn.execute(
                        "INSERT INTO sbp.votes (tenant_id, vote_uuid, building_id, zone_id,"
                        " kind, value, user_ref, client_ts, received_at, late, schema_version)"
                        " VALUES (%s, gen_random_uuid(), 'b1', 'z1', 'air', 1, 'u', %s, %s,"
                        " false, 2)",
                        (tenant_id, now, now),
                    )
    with psycopg.connect(scratch.pg_dsn("admin")) as conn, conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', 'acme', true)")
        conn.execute("INSERT INTO sbp.tenants (tenant_id, name) VALUES ('acme', 'Acme')")

    platform, _ = _dirs(tmp_path / "new")
    migrate(scratch.pg_dsn("owner"), _roles(scratch), platform, tenant_dir)

    def count(tenant_id: str, table: str) -> int:
        with psycopg.connect(scratch.pg_dsn("app")) as conn, conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
            row = conn.execute(f"SELECT count(*) FROM {table}".encode()).fetchone()
            return int(row[0]) if row else -1

    assert count("acme", '"t_acme".votes') == 3
    assert count("acme", "sbp.votes") == 0
    # A tenant that never had a tenant row keeps its rows where they were.
    assert count("orphan", "sbp.votes") == 2
    assert _owner_rows(scratch, "SELECT count(*) FROM pg_namespace WHERE nspname = 't_orphan'") == [
        (0,)
    ]
