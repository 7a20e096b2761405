"""The one settings object: every service, test and CLI reads its configuration here.

Values come from `SBP_*` environment variables, with defaults that suit the local
stack. Ports deliberately avoid the standard PostgreSQL (5432), Redis (6379) and
Kafka (9092) ports so the stack can run beside system services.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import quote

from psycopg.conninfo import make_conninfo
from pydantic import BaseModel, ConfigDict, Field, model_validator

REPO_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    state_dir: Path = Field(default=REPO_ROOT / ".devstack")
    # The local stack and tests. Outside dev mode (SBP_DEV_MODE=false) every password
    # must be set to something other than its development default, or the process
    # refuses to start (`_no_default_passwords`).
    dev_mode: bool = True

    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    pg_port: int = 15432
    # The dev stack's streaming standby (`sbp dev pg standby replica`); after a failover
    # it may be the primary, and the stack's services are pointed at it.
    pg_replica_port: int = 15433
    redis_port: int = 16379
    registry_port: int = 18081
    gateway_port: int = 18000
    # The tenant service (admin API and outbox relay); the gateway forwards to it.
    admin_port: int = 18010
    # Where the gateway finds it when it runs elsewhere (a container, production).
    admin_url_override: str | None = None
    # Its Prometheus metrics, like the gateway's: admin_port + 1 unless set.
    admin_metrics_port_override: int | None = None
    # The first faust worker's web server: readiness (/ready), /stats and /metrics. Worker
    # instance i listens on worker_web_port + i - 1.
    worker_web_port: int = 18066
    # Unique per worker process of the group: its static member id, web port and
    # data dir derive from it (`sbp dev up --workers N` numbers them 1..N).
    worker_instance: int = 1
    # The PostgreSQL sink's readiness (/ready), /stats and /metrics.
    sink_web_port: int = 18090
    # The gateway's Prometheus metrics, on a port of their own bound to `host`, never
    # on the public API: gateway_port + 1 unless set (0: any free port, for tests).
    gateway_metrics_port_override: int | None = None
    # Distinct tenants per process that get a `tenant` label of their own in the
    # gateway's metrics; the rest are labelled `other` (sbp/metrics/tenant_labels.py).
    metrics_tenant_label_cap: int = 50
    # How often the sink reads votes.dlq's start and end offsets for the DLQ depth.
    dlq_depth_every_s: float = 15.0

    # How long the vote stage keeps a dedup entry after the vote's clientTs: the
    # 7-day too_old horizon, plus the 2-minute future skew, plus an hour of margin
    # for clocks. After that the gateway refuses a re-send as too_old anyway.
    dedup_ttl_s: int = 7 * 24 * 3600 + 120 + 3600
    # How long after its minute starts a live bucket is kept: the longest window
    # (60 min) plus 5 minutes of grace. PostgreSQL keeps the history.
    live_bucket_ttl_s: int = 65 * 60

    # Where the services listen and, unless overridden below, where they are found.
    host: str = "127.0.0.1"
    # Overrides for services on other hosts (containers, production).
    kafka_bootstrap_override: str | None = None
    pg_host: str | None = None
    redis_host: str | None = None

    # Redis ACL users, one per kind of client (devstack/redis_server.py derives
    # each one's commands and key patterns). Redis's default user is off, so a
    # client that does not log in as one of these is refused.
    redis_gateway_user: str = "sbp-gateway"
    redis_gateway_password: str = "sbp-redis-gateway-dev"
    redis_worker_user: str = "sbp-worker"
    redis_worker_password: str = "sbp-redis-worker-dev"
    # Dev tooling and tests: the stack's readiness probe, inspecting and cleaning
    # up `t:*` keys. No service connects as it.
    redis_ops_user: str = "sbp-ops"
    redis_ops_password: str = "sbp-redis-ops-dev"

    def redis_credentials(self, client: str) -> tuple[str, str]:
        """(user, password) of a Redis client: "gateway", "worker" or "ops"."""
        return {
            "gateway": (self.redis_gateway_user, self.redis_gateway_password),
            "worker": (self.redis_worker_user, self.redis_worker_password),
            "ops": (self.redis_ops_user, self.redis_ops_password),
        }[client]

    def redis_url_for(self, client: str) -> str:
        """The URL a Redis client connects with, logged in as its own ACL user."""
        user, password = self.redis_credentials(client)
        credentials = f"{quote(user, safe='')}:{quote(password, safe='')}"
        return f"redis://{credentials}@{self.redis_host or self.host}:{self.redis_port}/0"

    pg_database: str = "sbp"
    pg_superuser: str = "postgres"
    # The local stack keeps a random one in its state dir; elsewhere set it here.
    pg_superuser_password: str | None = None
    # Owns every object and runs migrations; services never connect as it.
    pg_owner_user: str = "sbp_owner"
    pg_owner_password: str = "sbp-owner-dev"
    # Tooling and tests (seeding a test tenant, reading rows back): not a superuser,
    # no BYPASSRLS, owns nothing. No service connects as it.
    pg_app_user: str = "sbp_app"
    pg_app_password: str = "sbp-app-dev"
    # One login role per service, each granted only the statements its code runs
    # (migration 0006); like the application role, none owns anything or bypasses RLS.
    pg_gateway_user: str = "sbp_gateway"
    pg_gateway_password: str = "sbp-gateway-dev"
    pg_admin_user: str = "sbp_admin"
    pg_admin_password: str = "sbp-admin-dev"
    pg_registry_user: str = "sbp_registry"
    pg_registry_password: str = "sbp-registry-dev"
    pg_sink_user: str = "sbp_sink"
    pg_sink_password: str = "sbp-sink-dev"
    # `sbp replay`: appends to the operator log (migration 0008), nothing else.
    pg_replay_user: str = "sbp_replay"
    pg_replay_password: str = "sbp-replay-dev"
    # A standby's login to stream WAL: REPLICATION and nothing else (no database
    # privileges, not a superuser), allowed from loopback only (devstack/pg_replication.py).
    pg_replication_user: str = "sbp_replicator"
    pg_replication_password: str = "sbp-replication-dev"

    registry_user: str = "sbp-registry"
    registry_password: str = "sbp-registry-dev"
    # Overridable so production can point at another Confluent-compatible registry.
    registry_url_override: str | None = None

    # Topic defaults for a single-node broker; production raises these.
    kafka_replication_factor: int = 1

    # Kafka principals (SASL/SCRAM-SHA-512), one per service; streams/kafka_acls.py
    # declares what each may do. The admin is the one super user: provisioning
    # (topics, SCRAM users, ACLs) and test tooling, never a service.
    kafka_gateway_user: str = "sbp-gateway"
    kafka_gateway_password: str = "sbp-kafka-gateway-dev"
    kafka_worker_user: str = "sbp-worker"
    kafka_worker_password: str = "sbp-kafka-worker-dev"
    kafka_sink_user: str = "sbp-sink"
    kafka_sink_password: str = "sbp-kafka-sink-dev"
    kafka_admin_api_user: str = "sbp-admin-api"
    kafka_admin_api_password: str = "sbp-kafka-admin-api-dev"
    kafka_admin_user: str = "sbp-admin"
    kafka_admin_password: str = "sbp-kafka-admin-dev"

    def kafka_sasl(self, principal: str) -> tuple[str, str]:
        """(user, password) of a Kafka principal: "gateway", "worker", "sink",
        "admin_api" or "admin". Outside dev mode none is a development default
        (`_no_default_passwords` refuses such settings)."""
        user_field, password_field = f"kafka_{principal}_user", f"kafka_{principal}_password"
        if user_field not in Settings.model_fields or password_field not in Settings.model_fields:
            raise ValueError(f"unknown Kafka principal {principal!r}")
        user: str = getattr(self, user_field)
        password: str = getattr(self, password_field)
        return user, password

    def kafka_config(self, principal: str) -> dict[str, str]:
        """The confluent-kafka settings to connect as `principal`; callers add their own."""
        user, password = self.kafka_sasl(principal)
        return {
            "bootstrap.servers": self.kafka_bootstrap,
            "security.protocol": "SASL_PLAINTEXT",
            "sasl.mechanism": "SCRAM-SHA-512",
            "sasl.username": user,
            "sasl.password": password,
        }

    # SSE comment lines that keep idle connections (and proxies) open.
    sse_heartbeat_s: float = 15.0

    # Traces (sbp/tracing/). `trace_exporter`: "auto" exports over OTLP/HTTP when
    # `otlp_traces_endpoint` is set, else to JSON-lines files under `trace_dir` in
    # dev mode, else nowhere; "otlp", "file" and "none" choose explicitly. With
    # "none" no span is made and no header is carried.
    trace_exporter: Literal["auto", "none", "file", "otlp"] = "auto"
    # e.g. http://collector:4318/v1/traces
    otlp_traces_endpoint: str | None = None
    # The share of vote batches traced, decided once at the gateway by trace id
    # (a caller's own sampled flag does not force it); the stage and the sink
    # follow the gateway's decision.
    trace_sample_ratio: float = Field(default=1.0, ge=0.0, le=1.0)
    # The span queue of each process: a full queue drops spans, never waits.
    trace_queue_size: int = Field(default=4096, gt=0)
    trace_export_delay_ms: int = Field(default=1000, gt=0)
    # A span file past this size is moved to `<name>.1` (replacing the previous one).
    trace_file_max_bytes: int = Field(default=64 * 1024 * 1024, gt=0)

    jwt_issuer: str = "sbp-dev"
    jwt_audience: str = "sbp-api"
    access_token_ttl_s: int = 15 * 60

    @model_validator(mode="after")
    def _no_default_passwords(self) -> Settings:
        if self.dev_mode:
            return self
        defaults = [
            name
            for name, field in type(self).model_fields.items()
            if name.endswith("_password")
            and field.default is not None
            and getattr(self, name) == field.default
        ]
        if defaults:
            names = ", ".join("SBP_" + n.upper() for n in defaults)
            raise ValueError(f"outside dev mode these must be set, not left at defaults: {names}")
        return self

    @property
    def traces_to(self) -> str:
        """Where spans go: "otlp", "file" or "none" (`trace_exporter` with "auto" resolved)."""
        if self.trace_exporter != "auto":
            return self.trace_exporter
        if self.otlp_traces_endpoint:
            return "otlp"
        return "file" if self.dev_mode else "none"

    @property
    def trace_dir(self) -> Path:
        """The file exporter's span files, one per service: `<service>.jsonl`."""
        return self.state_dir / "traces"

    @property
    def keys_dir(self) -> Path:
        """Signing keys and the local keyring; production mounts a secret store here."""
        return self.state_dir / "keys"

    @property
    def gateway_metrics_port(self) -> int:
        if self.gateway_metrics_port_override is not None:
            return self.gateway_metrics_port_override
        return self.gateway_port + 1

    @property
    def admin_metrics_port(self) -> int:
        if self.admin_metrics_port_override is not None:
            return self.admin_metrics_port_override
        return self.admin_port + 1

    def worker_port(self, instance: int | None = None) -> int:
        return self.worker_web_port + (instance or self.worker_instance) - 1

    def worker_data_dir(self, instance: int | None = None) -> Path:
        return self.state_dir / "worker" / str(instance or self.worker_instance)

    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_override or f"{self.host}:{self.kafka_port}"

    @property
    def admin_url(self) -> str:
        return self.admin_url_override or f"http://{self.host}:{self.admin_port}"

    @property
    def registry_url(self) -> str:
        return self.registry_url_override or f"http://{self.host}:{self.registry_port}"

    @property
    def registry_basic_auth(self) -> str:
        """The `user:password` form that confluent-kafka's `basic.auth.user.info` takes."""
        return f"{self.registry_user}:{self.registry_password}"

    def pg_credentials(self, role: str) -> tuple[str, str]:
        """`owner`, `app` (tooling) or a service: `gateway`, `admin`, `registry`, `sink`,
        `replay` (the operators' CLI)."""
        if role not in ("owner", "app", *PG_SERVICE_ROLES):
            raise ValueError(f"unknown PostgreSQL role {role!r}")
        user: str = getattr(self, f"pg_{role}_user")
        password: str = getattr(self, f"pg_{role}_password")
        return user, password

    def pg_dsn(self, role: str = "app") -> str:
        user, password = self.pg_credentials(role)
        return make_conninfo(
            host=self.pg_host or self.host,
            port=self.pg_port,
            dbname=self.pg_database,
            user=user,
            password=password,
        )

    def pg_superuser_dsn(self, password: str, dbname: str = "postgres") -> str:
        return make_conninfo(
            host=self.pg_host or self.host,
            port=self.pg_port,
            dbname=dbname,
            user=self.pg_superuser,
            password=password,
        )


PG_SERVICE_ROLES = ("gateway", "admin", "registry", "sink", "replay")

_ENV_PREFIX = "SBP_"


def settings_from_env(env: dict[str, str] | None = None) -> Settings:
    """Build settings from `SBP_<FIELD>` variables (e.g. `SBP_KAFKA_PORT=29092`)."""
    source = os.environ if env is None else env
    values: dict[str, str] = {}
    for name in Settings.model_fields:
        raw = source.get(_ENV_PREFIX + name.upper())
        if raw is not None:
            values[name] = raw
    return Settings.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return settings_from_env()
