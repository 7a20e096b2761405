"""The local stack: health, idempotent `up`, roles and topics as the issue specifies."""

from __future__ import annotations

import uuid

import psycopg
import pytest
from confluent_kafka.admin import AdminClient

from devstack import stack as devstack
from devstack import workers
from sbp.settings import Settings
from schemas.codec import registry_client
from streams.topic_admin import TopicDeclarationError, apply_topics
from streams.topics import ALL_TOPICS, TopicSpec


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


def test_app_role_cannot_alter_table(stack: Settings) -> None:
    with (
        psycopg.connect(stack.pg_dsn("app")) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="must be owner"),
    ):
        conn.execute("ALTER TABLE sbp.votes DISABLE ROW LEVEL SECURITY")


def test_app_role_cannot_turn_row_security_off(stack: Settings) -> None:
    with psycopg.connect(stack.pg_dsn("app")) as conn:
        conn.execute("SET row_security = off")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security policy"):
            conn.execute("SELECT count(*) FROM sbp.votes").fetchone()


def test_rls_hides_other_tenants_rows(stack: Settings) -> None:
    tenant_a, tenant_b = f"t-{uuid.uuid4().hex[:8]}", f"t-{uuid.uuid4().hex[:8]}"
    row = (
        "b1",
        "z1",
        "thermal",
        1,
        "u",
        "2026-11-20T10:00:00Z",
        "2026-11-20T10:00:01Z",
        False,
        2,
    )
    insert = (
        "INSERT INTO sbp.votes (tenant_id, vote_uuid, building_id, zone_id, kind, value,"
        " user_ref, client_ts, received_at, late, schema_version)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
    )
    with psycopg.connect(stack.pg_dsn("app")) as conn:
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_a,))
            conn.execute(insert, (tenant_a, uuid.uuid4(), *row))
            # Writing another tenant's row under tenant A's setting is refused.
            with pytest.raises(psycopg.errors.InsufficientPrivilege), conn.transaction():
                conn.execute(insert, (tenant_b, uuid.uuid4(), *row))
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_b,))
            seen = conn.execute(
                "SELECT count(*) FROM sbp.votes WHERE tenant_id = %s", (tenant_a,)
            ).fetchone()
            assert seen == (0,)
        with conn.transaction():
            conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_a,))
            seen = conn.execute(
                "SELECT count(*) FROM sbp.votes WHERE tenant_id = %s", (tenant_a,)
            ).fetchone()
            assert seen == (1,)


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
