"""The local stack: health, idempotent `up`, roles and topics as the issue specifies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from confluent_kafka.admin import AdminClient
from psycopg import sql

from devstack import stack as devstack
from devstack import workers
from devstack.seed import seed_zones
from sbp.settings import Settings
from schemas.codec import registry_client
from streams.topic_admin import TopicDeclarationError, apply_topics
from streams.topics import ALL_TOPICS, TopicSpec
from tests.integration.conftest import Tenant
from tests.integration.observe import tenant_votes


def test_every_service_is_healthy(stack: Settings) -> None:
    statuses = devstack.status(stack)
    assert [s.name for s in statuses] == [
        "postgres",
        "redis",
        "kafka",
        "registry",
        "admin",
        *[f"worker-{i}" for i in workers.running(stack)],
        "pg-sink",
        "gateway",
    ]
    assert workers.running(stack), "no vote-stage worker runs"
    unhealthy = [s.name for s in statuses if not s.ready or s.pid is None]
    assert unhealthy == []


def _subject_versions(settings: Settings) -> dict[str, list[int]]:
    with registry_client(settings) as client:
        return {s: client.get_versions(s) for s in client.get_subjects()}


def test_second_up_changes_nothing(stack: Settings) -> None:
    pids_before = {s.name: s.pid for s in devstack.status(stack)}
    versions_before = _subject_versions(stack)
    with psycopg.connect(stack.pg_dsn("owner")) as conn:
        migrations_before = conn.execute(
            "SELECT version, checksum, applied_at FROM public.schema_migrations ORDER BY version"
        ).fetchall()

    report = devstack.up(stack, log=lambda _line: None)

    assert report.started == []
    assert report.migrations_applied == []
    assert report.topics_created == []
    assert report.topics_reconfigured == []
    assert not report.changed_anything
    assert {s.name: s.pid for s in devstack.status(stack)} == pids_before
    assert _subject_versions(stack) == versions_before
    with psycopg.connect(stack.pg_dsn("owner")) as conn:
        migrations_after = conn.execute(
            "SELECT version, checksum, applied_at FROM public.schema_migrations ORDER BY version"
        ).fetchall()
    assert migrations_after == migrations_before
    assert len(migrations_after) >= 2


def test_app_role_is_unprivileged(stack: Settings) -> None:
    with psycopg.connect(stack.pg_dsn("app")) as conn:
        rolsuper, rolbypassrls = conn.execute(
            "SELECT rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        ).fetchone() or (None, None)
        assert rolsuper is False
        assert rolbypassrls is False
        # Session temp tables (the sinks' COPY staging) vanish with the session;
        # every persistent relation must belong to the owner role.
        owned = conn.execute(
            "SELECT count(*) FROM pg_class WHERE relpersistence <> 't' AND relowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
        assert owned == (0,)
        owned_schemas = conn.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspowner = "
            "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
        ).fetchone()
        assert owned_schemas == (0,)


def test_app_role_cannot_alter_a_tenant_table(tenant: Tenant) -> None:
    with psycopg.connect(tenant.settings.pg_dsn("app")) as conn:
        table = tenant_votes(conn, tenant.tenant_id)
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"):
            conn.execute(sql.SQL("ALTER TABLE {} DISABLE ROW LEVEL SECURITY").format(table))


def test_app_role_cannot_turn_row_security_off(tenant: Tenant) -> None:
    with psycopg.connect(tenant.settings.pg_dsn("app")) as conn:
        table = tenant_votes(conn, tenant.tenant_id)
        conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table))  # positive control
        conn.execute("SET row_security = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security policy"):
            conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()


def _count(conn: psycopg.Connection[Any], table: sql.Composed) -> int:
    row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(row[0]) if row else -1


def test_every_tenant_gets_its_own_schema_and_rls_still_hides_other_tenants(
    stack: Settings,
) -> None:
    tenant_a, tenant_b = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    for tenant_id in (tenant_a, tenant_b):
        seed_zones(stack, tenant_id, "b1", [("f1", "z1", "zone 1")])
    now = datetime.now(UTC)
    insert = sql.SQL(
        "INSERT INTO {} (tenant_id, vote_uuid, building_id, zone_id, kind, value,"
        " user_ref, client_ts, received_at, late, schema_version)"
        " VALUES (%s, %s, 'b1', 'z1', 'thermal', 1, 'u', %s, %s, false, 2)"
    )
    with psycopg.connect(stack.pg_dsn("app")) as conn:
        with conn.transaction():
            table_a = tenant_votes(conn, tenant_a)
            conn.execute(insert.format(table_a), (tenant_a, uuid.uuid4(), now, now))
        with conn.transaction():
            table_b = tenant_votes(conn, tenant_b)
            assert table_a != table_b
            # Tenant B's setting sees nothing in tenant A's schema, nor A's rows in its own.
            assert _count(conn, table_a) == 0
            assert _count(conn, table_b) == 0
            # Writing a row of tenant A under tenant B's setting is refused.
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(insert.format(table_a), (tenant_a, uuid.uuid4(), now, now))
        with conn.transaction():
            tenant_votes(conn, tenant_a)
            assert _count(conn, table_a) == 1


def test_declared_topics_exist_with_their_partition_counts(stack: Settings) -> None:
    metadata = AdminClient({**stack.kafka_config("admin")}).list_topics(timeout=10)
    for spec in ALL_TOPICS:
        assert spec.name in metadata.topics, spec.name
        assert len(metadata.topics[spec.name].partitions) == spec.partitions, spec.name


def test_changed_partition_count_is_refused(stack: Settings) -> None:
    name = f"test.partitions.{uuid.uuid4().hex[:8]}"
    first = apply_topics(stack.kafka_config("admin"), [TopicSpec(name, 2, key="k")])
    assert first.created == [name]

    with pytest.raises(
        TopicDeclarationError, match=rf"{name}: declared 3 partitions, broker has 2"
    ):
        apply_topics(stack.kafka_config("admin"), [TopicSpec(name, 3, key="k")])

    metadata = AdminClient({**stack.kafka_config("admin")}).list_topics(topic=name, timeout=10)
    assert len(metadata.topics[name].partitions) == 2


def test_drifted_topic_config_is_set_back(stack: Settings) -> None:
    name = f"test.config.{uuid.uuid4().hex[:8]}"
    apply_topics(stack.kafka_config("admin"), [TopicSpec(name, 1, key="k", retention_ms=60_000)])
    report = apply_topics(
        stack.kafka_config("admin"), [TopicSpec(name, 1, key="k", retention_ms=120_000)]
    )
    assert report.reconfigured == [name]
    again = apply_topics(
        stack.kafka_config("admin"), [TopicSpec(name, 1, key="k", retention_ms=120_000)]
    )
    assert again.unchanged == [name]
