"""The faust worker application: configuration, the vote-state table, readiness.

Built by `create_app()` rather than at import time, so tests can build their
own. Topics carry raw bytes: decoding happens in the vote stage through the
one Avro codec, so a corrupt record becomes a DLQ entry with its reason
instead of crashing the stream.

Settings follow the faust lessons in the brief: RocksDB tables, replication 1
on the single-node broker, a short session timeout so a restart after SIGKILL
rejoins quickly, the classic group protocol, no leader topic, at-least-once
(never exactly_once), and faust's web server bound to the host with only the
readiness and stats pages (its `/table/...` routes would hand out state).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import faust

from sbp.settings import Settings
from streams.topics import VOTE_STATE_TABLE, VOTES_ACCEPTED, VOTES_RAW, WORKER_APP_ID, TopicSpec


def stream_options(settings: Settings, principal: str = "worker") -> dict[str, Any]:
    """The worker's consumer and topic settings; bench/faust_floor.py times faust with them
    (as the admin: its scratch topic and group are no service's)."""
    config = settings.kafka_config(principal)
    return {
        "broker": f"kafka://{settings.kafka_bootstrap}",
        "broker_credentials": faust.SASLCredentials(
            username=config["sasl.username"],
            password=config["sasl.password"],
            mechanism=config["sasl.mechanism"],
        ),
        "topic_replication_factor": settings.kafka_replication_factor,
        "topic_partitions": VOTES_RAW.partitions,
        "topic_disable_leader": True,
        "topic_allow_declare": False,
        "broker_session_timeout": 10.0,
        "broker_heartbeat_interval": 3.0,
        "broker_commit_interval": 1.0,
        "consumer_auto_offset_reset": "earliest",
        "stream_buffer_maxsize": 8192,
        "key_serializer": "raw",
        "value_serializer": "raw",
    }


def create_app(
    settings: Settings,
    *,
    store: str = "rocksdb://",
    loop: asyncio.AbstractEventLoop | None = None,
) -> faust.App:
    """The worker's app. Unit tests pass the `memory://` store and their running
    `loop`; the worker lets faust make its own."""
    instance = settings.worker_instance
    app = faust.App(
        WORKER_APP_ID,
        loop=loop,
        store=store,
        datadir=str(settings.worker_data_dir(instance) / "data"),
        **stream_options(settings),
        # Static membership, unique per instance and host (container replicas share
        # an instance number but not a hostname): a worker restarted after a crash
        # takes its old member's place without a second rebalance.
        consumer_group_instance_id=f"{WORKER_APP_ID}-{socket.gethostname()}-{instance}",
        web_host=settings.host,
        web_bind=settings.host,
        web_port=settings.worker_port(instance),
        web_enabled=True,
        # faust's own pages would serve every table key without a credential.
        web_tables_enabled=False,
        web_router_enabled=False,
        web_graph_enabled=False,
        web_stats_enabled=False,
    )
    return app


def raw_topic(app: faust.App, spec: TopicSpec) -> Any:
    return app.topic(
        spec.name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=spec.partitions,
    )


# RocksDB memory per partition database. faust's defaults (three 64 MB write
# buffers and a 2 GB block cache, each per database) let a worker holding all 24
# partitions grow past 1.5 GB under load. Writes come in batches and reads are
# point lookups of recent keys, so small buffers and caches cost little.
ROCKSDB_OPTIONS = {
    "write_buffer_size": 4 * 1024**2,
    "max_write_buffer_number": 2,
    "target_file_size_base": 16 * 1024**2,
    "block_cache_size": 8 * 1024**2,
}


def vote_state_table(app: faust.App) -> Any:
    """Dedup entries, live buckets and progress of each votes.raw partition."""
    return app.Table(
        VOTE_STATE_TABLE,
        default=None,
        partitions=VOTES_RAW.partitions,
        options=dict(ROCKSDB_OPTIONS),
        # bytes → raw serializers: the stage encodes values itself (orjson).
        key_type=bytes,
        value_type=bytes,
    )


def is_ready(app: faust.App) -> bool:
    """Partitions assigned and every table recovered from its changelog.

    The vote stage waits on this alone: it reads no configuration, so votes never
    wait for the config view. The worker's `/ready` also waits for the view
    (streams/worker.py), since its live snapshots need it.
    """
    recovery: Any = app.tables.recovery  # type: ignore[attr-defined]
    return (
        bool(app.consumer.assignment())
        and not app.rebalancing
        and recovery.completed.is_set()
        and not recovery.in_recovery
    )


__all__ = ["VOTES_ACCEPTED", "create_app", "is_ready", "raw_topic", "vote_state_table"]
