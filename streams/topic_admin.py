"""Apply the topic declarations to a broker, idempotently.

Missing topics are created; configs that drifted are set back to the declared
values; a partition count that differs is refused with `TopicDeclarationError`,
because re-partitioning silently moves keys and breaks co-partitioned state.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
)

from streams.topics import TopicSpec


class TopicDeclarationError(RuntimeError):
    """The broker's topic cannot be brought to its declaration without data loss."""


@dataclass(frozen=True)
class TopicReport:
    created: list[str]
    reconfigured: list[str]
    unchanged: list[str]


def apply_topics(
    admin_config: Mapping[str, str], topics: Iterable[TopicSpec], replication_factor: int = 1
) -> TopicReport:
    """`admin_config`: a client config allowed to create topics (`kafka_config("admin")`)."""
    specs = list(topics)
    admin = AdminClient(dict(admin_config))
    existing = admin.list_topics(timeout=10).topics

    mismatched = [
        f"{spec.name}: declared {spec.partitions} partitions, broker has "
        f"{len(existing[spec.name].partitions)}"
        for spec in specs
        if spec.name in existing and len(existing[spec.name].partitions) != spec.partitions
    ]
    if mismatched:
        raise TopicDeclarationError(
            "refusing to change partition counts (keys would move to other partitions "
            "and co-partitioned state would break); create a new topic and migrate "
            "instead: " + "; ".join(mismatched)
        )

    to_create = [s for s in specs if s.name not in existing]
    if to_create:
        futures = admin.create_topics(
            [
                NewTopic(s.name, s.partitions, replication_factor, config=s.config())
                for s in to_create
            ],
            operation_timeout=30,
        )
        for future in futures.values():
            try:
                future.result()
            except KafkaException as exc:
                # A concurrent `dev up` may have created it a moment ago: that is fine.
                if exc.args[0].name() != "TOPIC_ALREADY_EXISTS":
                    raise

    reconfigured = _reconcile_configs(admin, [s for s in specs if s.name in existing])
    created = [s.name for s in to_create]
    unchanged = [s.name for s in specs if s.name not in created and s.name not in reconfigured]
    return TopicReport(created=created, reconfigured=reconfigured, unchanged=unchanged)


def _reconcile_configs(admin: AdminClient, specs: list[TopicSpec]) -> list[str]:
    if not specs:
        return []
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    described = admin.describe_configs(resources)
    changed: list[str] = []
    for spec, resource in zip(specs, resources, strict=True):
        current = described[resource].result()
        drift = {
            key: value
            for key, value in spec.config().items()
            if key not in current or current[key].value != value
        }
        if not drift:
            continue
        alter = ConfigResource(
            ConfigResource.Type.TOPIC,
            spec.name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in drift.items()
            ],
        )
        for future in admin.incremental_alter_configs([alter]).values():
            future.result()
        changed.append(spec.name)
    return changed
