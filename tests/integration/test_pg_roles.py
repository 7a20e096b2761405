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
VOTE_ROW = (
    f"'{T}', gen_random_uuid(), 'b1', 'z1', 'thermal', 1, NULL, 'u', now(), now(), false,"
    " NULL, NULL, NULL, 2"
)
ALLOWED, REFUSED = True, False
LOG_ROW = (
    "INSERT INTO ops.operator_log (tenant_id, user_id, token_id, action, consumer_group,"
    " topic, detail) VALUES ('ops', 'alice', 'jti', 'replay.offsets.reset', 'g', 't', '{}')"
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
    ("gateway", "SELECT count(*) FROM sbp.votes", REFUSED),
    ("gateway", "SELECT sbp.ensure_vote_partitions(now()::date, 1000)", REFUSED),
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
    ("admin", "SELECT count(*) FROM sbp.refresh_tokens", REFUSED),
    ("admin", "UPDATE sbp.users SET role = 'platform_admin'", REFUSED),
    ("admin", "SELECT count(*) FROM registry.schemas", REFUSED),
    ("registry", "SELECT count(*) FROM registry.schemas", ALLOWED),
    ("registry", "SELECT count(*) FROM registry.subject_versions", ALLOWED),
    ("registry", "SELECT count(*) FROM sbp.users", REFUSED),
    ("registry", "SELECT count(*) FROM sbp.zones", REFUSED),
    ("registry", "SELECT count(*) FROM sbp.votes", REFUSED),
    ("sink", f"INSERT INTO sbp.votes VALUES ({VOTE_ROW})", ALLOWED),
    ("sink", "SELECT sbp.ensure_vote_partitions(now()::date, 1)", ALLOWED),
    ("sink", "SELECT count(*) FROM sbp.votes", REFUSED),
    ("sink", "DELETE FROM sbp.votes", REFUSED),
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
