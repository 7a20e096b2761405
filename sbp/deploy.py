"""Provisioning steps shared by `sbp dev up` and `sbp deploy` (containers, production).

Each step is idempotent and can run again at any time: database roles and
migrations, the demo seed, the topic declarations, the Kafka service principals
(SCRAM users and ACLs), and schema registration.
"""

from __future__ import annotations

from collections.abc import Callable

from admin.tenant_settings import DEFAULT_SETTINGS
from devstack.seed import seed_demo
from sbp.settings import PG_SERVICE_ROLES, Settings
from schemas.catalog import register_all
from schemas.codec import registry_client
from sinks.timescale.migrate import migrate
from sinks.timescale.provision import backfill_config_outbox, bootstrap_database
from streams.acl_admin import PrincipalReport, apply_principals
from streams.kafka_acls import SERVICE_PRINCIPALS
from streams.topic_admin import TopicReport, apply_topics
from streams.topics import ALL_TOPICS


def init_database(
    settings: Settings, superuser_dsn: Callable[[str], str], seed: bool = False
) -> list[str]:
    """Roles, database, migrations (and the demo tenant); returns migrations applied now."""
    bootstrap_database(settings, superuser_dsn)
    roles = {name: settings.pg_credentials(name)[0] for name in ("app", *PG_SERVICE_ROLES)}
    applied = migrate(settings.pg_dsn("owner"), roles)
    backfill_config_outbox(
        superuser_dsn(settings.pg_database), DEFAULT_SETTINGS.model_dump(by_alias=True)
    )
    if seed:
        seed_demo(settings)
    return applied


def init_topics(settings: Settings) -> TopicReport:
    return apply_topics(
        settings.kafka_config("admin"), ALL_TOPICS, settings.kafka_replication_factor
    )


def init_principals(settings: Settings) -> PrincipalReport:
    """Each service's SCRAM user (its configured password) and exactly its ACLs."""
    credentials = {p.client: settings.kafka_sasl(p.client) for p in SERVICE_PRINCIPALS}
    return apply_principals(settings.kafka_config("admin"), credentials)


def register_schemas(settings: Settings) -> dict[str, list[int]]:
    with registry_client(settings) as client:
        return register_all(client)
