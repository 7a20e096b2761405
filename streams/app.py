"""The faust worker application: topics, tables and readiness.

Agents live in streams/agents/ (one module per pipeline stage) and register on
this app when imported by streams/worker.py. Topics carry raw bytes: decoding
happens in the agents through the one Avro codec, so a corrupt record becomes a
DLQ entry with its reason instead of crashing the stream.

Settings follow the faust lessons in the brief: RocksDB tables, replication 1
on the single-node broker, a short session timeout so a restart after SIGKILL
rejoins quickly, no leader topic, and at-least-once processing (never
exactly_once).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.web import Request, Response, View

from sbp.settings import get_settings
from streams.counters import counters
from streams.topics import (
    BUCKETS_TABLE,
    DEDUP_TABLE,
    VOTES_ACCEPTED,
    VOTES_DLQ,
    VOTES_RAW,
    WORKER_APP_ID,
    TopicSpec,
)

settings = get_settings()

app = faust.App(
    WORKER_APP_ID,
    broker=f"kafka://{settings.kafka_bootstrap}",
    store="rocksdb://",
    datadir=str(settings.state_dir / "worker" / "data"),
    topic_replication_factor=settings.kafka_replication_factor,
    topic_partitions=VOTES_RAW.partitions,
    topic_disable_leader=True,
    topic_allow_declare=False,
    broker_session_timeout=10.0,
    broker_heartbeat_interval=3.0,
    broker_commit_interval=1.0,
    consumer_auto_offset_reset="earliest",
    # Static membership: a worker restarted after a crash takes its old member's
    # place at once. Without it the dead member's session expiry forces a second
    # rebalance mid-replay, and faust acks (and may commit) records it skips as
    # being from the old generation, so a sink could lose them.
    consumer_group_instance_id=f"{WORKER_APP_ID}-{settings.worker_instance}",
    key_serializer="raw",
    value_serializer="raw",
    web_host=settings.host,
    # faust binds 0.0.0.0 unless told otherwise; the page serves stats, keep it local.
    web_bind=settings.host,
    web_port=settings.worker_web_port,
    web_enabled=True,
)


def declared_topic(spec: TopicSpec) -> Any:
    return app.topic(
        spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


raw_votes = declared_topic(VOTES_RAW)
accepted_votes = declared_topic(VOTES_ACCEPTED)
vote_dlq = declared_topic(VOTES_DLQ)

# key tenantId|voteUuid → where the vote was first seen (streams/tables/dedup.py).

vote_dedup = app.Table(
    DEDUP_TABLE,
    default=None,
    partitions=VOTES_RAW.partitions,
    # faust derives the key serializer from key_type (bytes → raw); values are JSON.
    key_type=bytes,
)

# key tenant|building|zone|kind|minute → bucket partial (streams/tables/comfort_buckets.py).
comfort_buckets = app.Table(
    BUCKETS_TABLE,
    default=None,
    partitions=VOTES_ACCEPTED.partitions,
    # faust derives the key serializer from key_type (bytes → raw); values are JSON.
    key_type=bytes,
)


def is_ready() -> bool:
    """Partitions assigned and every table recovered from its changelog."""
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    return (
        bool(app.consumer.assignment())
        and not app.rebalancing
        and recovery.completed.is_set()
        and not recovery.in_recovery
    )


@app.page("/ready")
class Readiness(View):
    async def get(self, request: Request) -> Response:
        ready = is_ready()
        return self.json({"ready": ready}, status=200 if ready else 503)


@app.page("/stats")
class Stats(View):
    async def get(self, request: Request) -> Response:
        return self.json(dict(counters))
