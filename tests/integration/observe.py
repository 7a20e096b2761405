"""Reading the pipeline's effects from the real services, for the integration tests.

Waiting is done by polling an observable condition with a deadline, never by
fixed sleeps.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import psycopg
import redis
from confluent_kafka import Consumer, ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from psycopg import sql

from sbp.settings import Settings
from schemas.codec import AvroCodec, registry_client
from sinks.live.redis_keys import comfort_snapshots

T = TypeVar("T")


def wait_for(probe: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    delay = 0.05
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last probe: {last!r}")


def tenant_votes(conn: psycopg.Connection[Any], tenant_id: str) -> sql.Composed:
    """The tenant's votes table (`<its schema>.votes`), with `app.tenant_id` set for the
    caller's transaction; AssertionError if the tenant has no schema."""
    conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
    row = conn.execute("SELECT sbp.tenant_schema(%s)", (tenant_id,)).fetchone()
    assert row is not None and row[0] is not None, f"tenant {tenant_id} has no schema"
    return sql.SQL("{}.votes").format(sql.Identifier(row[0]))


def vote_rows(settings: Settings, tenant_id: str) -> list[tuple[Any, ...]]:
    """(vote_uuid, zone, kind, value, late, schema_version) for every stored vote of a tenant."""
    with psycopg.connect(settings.pg_dsn("app")) as conn, conn.transaction():
        table = tenant_votes(conn, tenant_id)
        return conn.execute(
            sql.SQL(
                "SELECT vote_uuid::text, zone_id, kind, value, late, schema_version"
                " FROM {} ORDER BY vote_uuid"
            ).format(table)
        ).fetchall()


def vote_count(settings: Settings, tenant_id: str) -> int:
    with psycopg.connect(settings.pg_dsn("app")) as conn, conn.transaction():
        table = tenant_votes(conn, tenant_id)
        row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
        return int(row[0]) if row else 0


def zone_snapshot(
    settings: Settings, tenant_id: str, building_id: str, zone_id: str
) -> dict[str, Any] | None:
    client = redis.Redis.from_url(settings.redis_url_for("ops"))
    try:
        raw = client.hget(comfort_snapshots(tenant_id, building_id), zone_id)
    finally:
        client.close()
    return json.loads(raw) if raw else None


def window(snapshot: dict[str, Any] | None, kind: str, length: str) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    stats: dict[str, Any] | None = snapshot["kinds"].get(kind, {}).get(length)
    return stats


def end_offsets(settings: Settings, topic: str) -> dict[int, int]:
    consumer = Consumer({**settings.kafka_config("admin"), "group.id": "sbp-tests-watermarks"})
    try:
        meta = AdminClient({**settings.kafka_config("admin")}).list_topics(topic=topic, timeout=10)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in meta.topics[topic].partitions
        }
    finally:
        consumer.close()


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """A consumer group's committed offset per partition (-1001 where it has none)."""
    consumer = Consumer({**settings.kafka_config("admin"), "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in end_offsets(settings, topic)]
        return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10)}
    finally:
        consumer.close()


def read_new_records(
    settings: Settings,
    topic: str,
    since: dict[int, int],
    until: Callable[[list[Any]], bool],
    timeout: float = 60.0,
) -> list[Any]:
    """Consume `topic` from the offsets in `since` until `until(records)` holds."""
    consumer = Consumer(
        {
            **settings.kafka_config("admin"),
            "group.id": "sbp-tests-reader",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, p, o) for p, o in since.items()])
    records: list[Any] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not until(records):
            msg = consumer.poll(0.5)
            if msg is not None and msg.error() is None:
                records.append(msg)
    finally:
        consumer.close()
    assert until(records), f"{topic}: condition not met after {timeout}s ({len(records)} read)"
    return records


def decode(settings: Settings, value: bytes) -> dict[str, Any]:
    with registry_client(settings) as client:
        return AvroCodec(client).decode(value).record


def worker_stats(settings: Settings) -> dict[str, int]:
    """The vote stage's counters, summed over every running worker."""
    from devstack import workers

    total: dict[str, int] = {}
    for instance in workers.running(settings):
        url = f"http://{settings.host}:{settings.worker_port(instance)}/stats"
        for name, value in httpx.get(url, timeout=5).json().items():
            if isinstance(value, int):
                total[name] = total.get(name, 0) + value
    return total


def wait_window(
    settings: Settings,
    tenant_id: str,
    zone: str,
    kind: str,
    length: str,
    n: int,
    building: str = "b1",
    timeout: float = 60.0,
) -> dict[str, Any]:
    """The zone's published window once it counts `n` votes."""

    def probe() -> dict[str, Any] | None:
        stats = window(zone_snapshot(settings, tenant_id, building, zone), kind, length)
        return stats if stats is not None and stats["n"] == n else None

    return wait_for(probe, timeout, f"{zone} {kind} {length} window with n={n}")


def group_members(settings: Settings, group: str) -> tuple[str, int]:
    """A consumer group's state (`STABLE`, `PREPARING_REBALANCE`, ...) and member count."""
    admin = AdminClient({**settings.kafka_config("admin")})
    try:
        description = admin.describe_consumer_groups([group])[group].result(timeout=10)
    except (KafkaException, TimeoutError) as exc:
        return f"unreachable: {exc}", -1
    state = description.state
    name = state.name if isinstance(state, ConsumerGroupState) else str(state)
    return name, len(description.members)


def wait_group_settled(settings: Settings, group: str, members: int, timeout: float) -> None:
    """Until the group is stable with exactly `members` members. A stopped worker keeps
    its static membership until the session times out, so the survivors' rebalance
    (and their recovery) can begin well after the process is gone."""
    wait_for(
        lambda: group_members(settings, group) == ("STABLE", members) or None,
        timeout,
        f"group {group} stable with {members} member(s)",
    )
