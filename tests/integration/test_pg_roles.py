"""Least privilege in PostgreSQL: each service logs in as its own role, which may run
what its code runs and is refused the rest. Every refusal has a positive control in
the same matrix (another role, or the same role on its own table, succeeds)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from devstack.seed import seed_zones
from identity.provisioning import ProvisioningError
from sbp.settings import PG_SERVICE_ROLES, Settings
from tests.integration.accounts import create_account

T = "t-pgroles"
# The tenant's own schema (sbp.tenant_schema_name: `t_` and the id, quoted).
VOTES = '"t_t-pgroles".votes'
VOTE_ROW = (
    f"'{T}', gen_random_uuid(), 'b1', 'z1', 'thermal', 1, NULL, 'u', now(), now(), false,"
    " NULL, NULL, NULL, 2"
)
ALLOWED, REFUSED = True, False
LOG_ROW = (
    "INSERT INTO ops.operator_log (tenant_id, user_id, token_id, action, consumer_group,"
    " topic, detail) VALUES ('ops', 'alice', 'jti', 'replay.offsets.reset', 'g', 't', '{}')"
)
LEDGER_ROW = (
    "INSERT INTO ops.dlq_redrive (redrive_id, dlq_topic, dlq_partition, first_offset,"
    " last_offset) VALUES (gen_random_uuid(), 'pgroles.dlq', 0, 5, 9)"
)

# (role, statement, allowed). Each runs in a transaction that is rolled back, with
# app.tenant_id set to T.
MATRIX: list[tuple[str, str, bool]] = [
    ("gateway", "SELECT count(*) FROM sbp.zones", ALLOWED),
    ("gateway", "SELECT count(*) FROM sbp.users", ALLOWED),
    ("gateway", "UPDATE sbp.users SET totp_last_step = totp_last_step", ALLOWED),
    ("gateway", "UPDATE sbp.users SET role = 'platform_admin'", REFUSED),
    (
        "gateway",
        "INSERT INTO sbp.users (tenant_id, user_id, role, password_hash)"
        f" VALUES ('{T}', 'x', 'occupant', 'h')",
        REFUSED,
    ),
    ("gateway", f"SELECT count(*) FROM {VOTES}", REFUSED),
    ("gateway", "SELECT count(*) FROM sbp.votes", REFUSED),
    ("gateway", f"SELECT sbp.ensure_tenant_vote_partitions('{T}', now()::date, 1)", REFUSED),
    ("gateway", f"SELECT sbp.provision_tenant_schema('{T}')", REFUSED),
    ("gateway", f"SELECT sbp.tenant_schema('{T}')", REFUSED),
    ("gateway", "SELECT * FROM sbp.outbox_take(1)", REFUSED),
    (
        "gateway",
        "INSERT INTO sbp.outbox (tenant_id, topic, record_key)"
        f" VALUES ('{T}', 'config.zones', 'k')",
        REFUSED,
    ),
    ("gateway", "DELETE FROM sbp.auth_audit", REFUSED),
    ("gateway", "DELETE FROM registry.subject_versions", REFUSED),
    ("gateway", "DELETE FROM sbp.zones", REFUSED),
    # RLS's WITH CHECK: a tenant row other than the one the transaction names.
    ("admin", f"INSERT INTO sbp.tenants (tenant_id, name) VALUES ('{T}-x', 'x')", REFUSED),
    (
        "admin",
        f"INSERT INTO sbp.buildings (tenant_id, building_id, name) VALUES ('{T}', 'bx', 'x')",
        ALLOWED,
    ),
    (
        "admin",
        "INSERT INTO sbp.outbox (tenant_id, topic, record_key)"
        f" VALUES ('{T}', 'config.zones', 'k')",
        ALLOWED,
    ),
    ("admin", "SELECT * FROM sbp.outbox_take(1)", ALLOWED),
    ("admin", "SELECT count(*) FROM sbp.outbox", REFUSED),
    ("admin", "SELECT count(*) FROM sbp.votes", REFUSED),
    ("admin", f"SELECT count(*) FROM {VOTES}", REFUSED),
    # Creating a tenant creates its schema; for an existing one it does nothing.
    ("admin", f"SELECT sbp.provision_tenant_schema('{T}')", ALLOWED),
    ("admin", "SELECT count(*) FROM public.tenant_schemas", REFUSED),
    ("admin", "SELECT count(*) FROM public.tenant_migrations", REFUSED),
    ("admin", "SELECT count(*) FROM sbp.refresh_tokens", REFUSED),
    ("admin", "UPDATE sbp.users SET role = 'platform_admin'", REFUSED),
    ("admin", "SELECT count(*) FROM registry.schemas", REFUSED),
    ("registry", "SELECT count(*) FROM registry.schemas", ALLOWED),
    ("registry", "SELECT count(*) FROM registry.subject_versions", ALLOWED),
    ("registry", "SELECT count(*) FROM sbp.users", REFUSED),
    ("registry", "SELECT count(*) FROM sbp.zones", REFUSED),
    ("registry", "SELECT count(*) FROM sbp.votes", REFUSED),
    ("registry", f"SELECT count(*) FROM {VOTES}", REFUSED),
    ("sink", f"INSERT INTO {VOTES} VALUES ({VOTE_ROW})", ALLOWED),
    ("sink", f"SELECT sbp.tenant_schema('{T}')", ALLOWED),
    ("sink", f"SELECT sbp.ensure_tenant_vote_partitions('{T}', now()::date, 1)", ALLOWED),
    ("sink", f"SELECT count(*) FROM {VOTES}", REFUSED),
    ("sink", f"DELETE FROM {VOTES}", REFUSED),
    ("sink", f"UPDATE {VOTES} SET value = 0", REFUSED),
    ("sink", f"SELECT sbp.provision_tenant_schema('{T}')", REFUSED),
    # The shared table of before per-tenant schemas takes no more votes.
    ("sink", f"INSERT INTO sbp.votes VALUES ({VOTE_ROW})", REFUSED),
    ("sink", "SELECT sbp.ensure_vote_partitions(now()::date, 1)", REFUSED),
    ("sink", "SELECT count(*) FROM sbp.users", REFUSED),
    ("sink", "SELECT count(*) FROM sbp.zones", REFUSED),
    ("sink", "SELECT count(*) FROM registry.schemas", REFUSED),
    ("sink", LOG_ROW, REFUSED),
    # The operator log: the replay CLI appends, the tooling reads, nobody rewrites.
    ("replay", LOG_ROW, ALLOWED),
    ("replay", "SELECT count(*) FROM ops.operator_log", REFUSED),
    ("replay", f"{LOG_ROW}; UPDATE ops.operator_log SET user_id = 'mallory'", REFUSED),
    ("replay", f"{LOG_ROW}; DELETE FROM ops.operator_log", REFUSED),
    ("replay", "SELECT count(*) FROM sbp.votes", REFUSED),
    ("replay", "SELECT count(*) FROM sbp.users", REFUSED),
    ("app", "SELECT count(*) FROM ops.operator_log", ALLOWED),
    ("app", LOG_ROW, REFUSED),
    # Even the owner, which holds every privilege on it, is stopped by the trigger.
    ("owner", f"{LOG_ROW}; UPDATE ops.operator_log SET user_id = 'mallory'", REFUSED),
    ("owner", f"{LOG_ROW}; DELETE FROM ops.operator_log", REFUSED),
    ("owner", "TRUNCATE ops.operator_log", REFUSED),
    ("owner", LOG_ROW, ALLOWED),
    # The DLQ re-drive ledger: the replay CLI reads it (to skip what is done) and
    # appends to it; nobody rewrites it, so a re-driven letter cannot be re-driven again.
    ("replay", LEDGER_ROW, ALLOWED),
    ("replay", "SELECT count(*) FROM ops.dlq_redrive", ALLOWED),
    ("replay", f"{LEDGER_ROW}; UPDATE ops.dlq_redrive SET last_offset = 99", REFUSED),
    ("replay", f"{LEDGER_ROW}; DELETE FROM ops.dlq_redrive", REFUSED),
    ("app", "SELECT count(*) FROM ops.dlq_redrive", ALLOWED),
    ("app", LEDGER_ROW, REFUSED),
    ("sink", "SELECT count(*) FROM ops.dlq_redrive", REFUSED),
    ("owner", f"{LEDGER_ROW}; DELETE FROM ops.dlq_redrive", REFUSED),
    ("owner", "TRUNCATE ops.dlq_redrive", REFUSED),
]


@pytest.fixture(scope="module")
def seeded(stack: Settings) -> Iterator[Settings]:
    seed_zones(stack, T, "b1", [("f1", "z1", "zone 1")])
    # The account may be there from an earlier run against the same stack.
    with contextlib.suppress(ProvisioningError):
        create_account(stack, T, "someone", "occupant", ["b1"])
    yield stack


def _run(settings: Settings, role: str, statement: str, tenant: str | None = T) -> str:
    with psycopg.connect(settings.pg_dsn(role)) as conn:
        try:
            with conn.transaction(force_rollback=True):
                if tenant is not None:
                    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
                conn.execute(statement)
        except psycopg.errors.InsufficientPrivilege as exc:
            return f"refused: {str(exc).splitlines()[0]}"
    return "ok"


@pytest.mark.parametrize(("role", "statement", "allowed"), MATRIX)
def test_each_service_role_runs_exactly_its_statements(
    seeded: Settings, role: str, statement: str, allowed: bool
) -> None:
    outcome = _run(seeded, role, statement)
    assert (outcome == "ok") is allowed, f"{role}: {statement} → {outcome}"


@pytest.mark.parametrize("role", PG_SERVICE_ROLES)
def test_service_roles_are_unprivileged_and_own_nothing(stack: Settings, role: str) -> None:
    with psycopg.connect(stack.pg_dsn(role)) as conn:
        row = conn.execute(
            "SELECT rolsuper, rolbypassrls, rolcreatedb, rolcreaterole FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        assert row == (False, False, False, False)
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relpersistence <> 't' AND relowner ="
            " (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
        assert owned == (0,)


def test_rls_confines_a_service_role_to_the_tenant_it_names(seeded: Settings) -> None:
    def users(tenant: str | None) -> int:
        with psycopg.connect(seeded.pg_dsn("gateway")) as conn, conn.transaction():
            if tenant is not None:
                conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant,))
            row = conn.execute("SELECT count(*) FROM sbp.users WHERE tenant_id = %s", (T,))
            return int(row.fetchone()[0])  # type: ignore[index]

    assert users(T) >= 1  # positive control
    assert users(None) == 0
    assert users(f"t-{uuid.uuid4().hex[:8]}") == 0


def test_the_sink_makes_a_bounded_number_of_partitions_a_call(seeded: Settings) -> None:
    with psycopg.connect(seeded.pg_dsn("sink")) as conn:
        ahead = conn.execute(
            "SELECT sbp.ensure_tenant_vote_partitions(%s, now()::date, 24)", (T,)
        ).fetchone()
        assert ahead is not None and ahead[0] >= 0  # positive control: 24 is allowed
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="between 1 and 24"):
            conn.execute("SELECT sbp.ensure_tenant_vote_partitions(%s, now()::date, 25)", (T,))


def test_a_tenant_schema_confines_its_rows_to_its_tenant(seeded: Settings) -> None:
    """Defense in depth under the schema: RLS and the tenant CHECK, as the sink's role."""
    other = f"t-{uuid.uuid4().hex[:8]}"
    row = VOTE_ROW.replace(f"'{T}'", "%s", 1)
    insert = f"INSERT INTO {VOTES} VALUES ({row})"
    with psycopg.connect(seeded.pg_dsn("sink")) as conn:
        with conn.transaction(force_rollback=True):  # positive control
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (T,))
            assert conn.execute(insert, (T,)).rowcount == 1
        with conn.transaction(force_rollback=True):
            # Another tenant's row under that tenant's setting: RLS lets it pass, the
            # schema's CHECK refuses it.
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (other,))
            with pytest.raises(psycopg.errors.CheckViolation):
                conn.execute(insert, (other,))
        with conn.transaction(force_rollback=True):
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (other,))
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
                conn.execute(insert, (T,))
