"""`sbp dev up | down | status`: the whole local stack, idempotently.

`up` starts only what is not already running, applies migrations, topics and
schemas (each idempotent), and waits on every readiness check. `down` stops, in
reverse order, only the processes whose pid files it wrote. State lives in
`settings.state_dir` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from devstack import kafka, postgres, redis_server, workers
from devstack.processes import ManagedProcess
from devstack.python_services import ADMIN, GATEWAY, REGISTRY, SINK, worker
from sbp.deploy import init_database, init_principals, init_topics, register_schemas
from sbp.settings import Settings
from sinks.timescale.provision import BACKFILL_STEP


@dataclass
class UpReport:
    started: list[str] = field(default_factory=list)
    migrations_applied: list[str] = field(default_factory=list)
    topics_created: list[str] = field(default_factory=list)
    topics_reconfigured: list[str] = field(default_factory=list)
    schema_ids: dict[str, list[int]] = field(default_factory=dict)

    @property
    def changed_anything(self) -> bool:
        return bool(
            self.started
            or self.migrations_applied
            or self.topics_created
            or self.topics_reconfigured
        )


@dataclass(frozen=True)
class Service:
    name: str
    process: Callable[[Settings], ManagedProcess]
    ready: Callable[[Settings], bool]
    stop: Callable[[Settings], bool]


SERVICES: tuple[Service, ...] = (
    Service("postgres", postgres.process, postgres.is_ready, postgres.down),
    Service("redis", redis_server.process, redis_server.is_ready, redis_server.down),
    Service("kafka", kafka.process, kafka.is_ready, kafka.down),
    Service("registry", REGISTRY.process, REGISTRY.is_ready, REGISTRY.down),
    Service("admin", ADMIN.process, ADMIN.is_ready, ADMIN.down),
    Service("pg-sink", SINK.process, SINK.is_ready, SINK.down),
    Service("gateway", GATEWAY.process, GATEWAY.is_ready, GATEWAY.down),
)


def _worker_services(settings: Settings) -> list[Service]:
    return [
        Service(
            f"worker-{i}",
            worker(i).process,
            worker(i).is_ready,
            worker(i).down,
        )
        for i in workers.running(settings) or [1]
    ]


def up(
    settings: Settings, log: Callable[[str], None] = print, worker_count: int | None = None
) -> UpReport:
    """Start what is missing. `worker_count` None keeps the workers that run (at least one)."""
    report = UpReport()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    every = [*SERVICES, *_worker_services(settings)]
    running_before = {s.name for s in every if s.process(settings).is_running()}
    count = worker_count or max(len(workers.running(settings)), 1)

    log("kafka: resolving jars and starting the broker")
    new_kafka_storage = kafka.start(settings)
    log("postgres: starting the private cluster")
    postgres.up(settings)
    if new_kafka_storage and _republish_config(settings):
        log("kafka: new storage; every zone and tenant setting queued for the config topics")
    report.migrations_applied = init_database(
        postgres.primary_settings(settings),
        lambda db: postgres.superuser_dsn(settings, db),
        seed=True,
    )
    log(f"postgres: ready; migrations applied now: {report.migrations_applied or 'none'}")
    redis_server.up(settings)
    log("redis: ready")
    kafka.wait_ready(settings)
    topics = init_topics(settings)
    report.topics_created = topics.created
    report.topics_reconfigured = topics.reconfigured
    principals = init_principals(settings)
    log(
        f"kafka: ready; topics created {topics.created or 'none'}, "
        f"reconfigured {topics.reconfigured or 'none'}; ACLs of {', '.join(principals.users)}: "
        f"created {len(principals.acls_created)}, deleted {len(principals.acls_deleted)}"
    )
    REGISTRY.up(settings)
    report.schema_ids = register_schemas(settings)
    log(f"registry: ready at {settings.registry_url}; schema ids {report.schema_ids}")
    # The tenant service publishes the seeded configuration before the gateway reads it.
    ADMIN.up(settings)
    log(f"admin: ready at {settings.admin_url} (the gateway forwards /api/v1/admin/*)")
    # The workers, the sink and the gateway look their schemas up at start, so they come last.
    workers.scale(settings, count, wait=False)
    SINK.start(settings)
    GATEWAY.start(settings)
    GATEWAY.wait_ready(settings)
    log(f"gateway: ready at http://{settings.host}:{settings.gateway_port}")
    SINK.wait_ready(settings)
    log("pg-sink: ready")
    workers.scale(settings, count, wait=True)
    log(f"workers 1..{count}: ready (partitions assigned, tables recovered)")

    report.started = [
        s.name
        for s in [*SERVICES, *_worker_services(settings)]
        if s.name not in running_before and s.process(settings).is_running()
    ]
    return report


def _republish_config(settings: Settings) -> bool:
    """A new Kafka storage (re-formatted after the switch to SASL, say) has empty config
    topics, while PostgreSQL still holds the tenants they mirror. Clearing the config
    back-fill's done-mark makes `init_database` queue every zone and setting again, and
    the outbox relay publishes them; on compacted topics that is the current state."""
    with psycopg.connect(postgres.superuser_dsn(settings)) as conn:
        found = conn.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", (settings.pg_database,)
        ).fetchone()
    if found is None:
        return False
    with psycopg.connect(postgres.superuser_dsn(settings, settings.pg_database)) as conn:
        row = conn.execute("SELECT to_regclass('public.provisioning_steps')").fetchone()
        if row is None or row[0] is None:
            return False
        conn.execute("DELETE FROM public.provisioning_steps WHERE name = %s", (BACKFILL_STEP,))
    return True


def down(settings: Settings, log: Callable[[str], None] = print) -> list[str]:
    stopped = []
    demo = ManagedProcess("demo-load", settings.state_dir / "run", marker="devstack.demo_load")
    if demo.stop():
        stopped.append("demo-load")
    for instance in workers.stop_all(settings):
        stopped.append(f"worker-{instance}")
    for service in reversed(SERVICES):
        if service.stop(settings):
            stopped.append(service.name)
            log(f"{service.name}: stopped")
    return stopped


def stop_one(settings: Settings, name: str) -> bool:
    """Stop one service (e.g. the sink before its group's offsets are reset); `up`
    starts it again. True if it was running. KeyError for an unknown name."""
    known = {s.name: s for s in [*SERVICES, *_worker_services(settings)]}
    return known[name].stop(settings)


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    pid: int | None
    ready: bool


def status(settings: Settings) -> list[ServiceStatus]:
    result = []
    # In start order: the workers come after the registry.
    ordered = [*SERVICES[:5], *_worker_services(settings), *SERVICES[5:]]
    for service in ordered:
        pid = service.process(settings).pid()
        result.append(ServiceStatus(service.name, pid, pid is not None and service.ready(settings)))
    return result
