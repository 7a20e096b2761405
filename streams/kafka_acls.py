"""What each service's Kafka principal may do: least privilege, declared once.

The broker denies whatever no ACL allows (`allow.everyone.if.no.acl.found=false`),
so these grants are the whole of a service's access. They are derived from what
each client really does, and from the topic catalogue (streams/topics.py), so a
topic renamed there moves its grants with it. `streams.acl_admin` applies them
idempotently (docs/kafka-acl.md).

Kafka implies DESCRIBE from READ and WRITE (metadata, offsets lookups,
coordinator lookups), and an idempotent producer needs only WRITE on some
topic (KIP-679), so no DESCRIBE or IDEMPOTENT_WRITE grant is listed. No client
uses transactions (the brief rules out exactly-once), so there are no
transactional-id grants. The admin principal is a super user and has no ACLs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from streams.topics import (
    ALL_TOPICS,
    PG_SINK_DLQ_DEPTH_GROUP,
    PG_SINK_GROUP,
    VOTES_ACCEPTED,
    VOTES_DLQ,
    VOTES_RAW,
    WORKER_APP_ID,
)

# Compacted configuration topics, written by the admin API's outbox relay and
# followed by the gateway and the worker.
CONFIG_TOPIC_PREFIX = "config."
# The groups of the config view (streams/config_view.py) of each service. Never
# joined (partitions are assigned), but librdkafka looks the group's coordinator up,
# which the broker refuses (GROUP_AUTHORIZATION_FAILED) without a grant on it.
GATEWAY_CONFIG_GROUP_PREFIX = "sbp-gateway-config"
WORKER_CONFIG_GROUP = f"{WORKER_APP_ID}-config"

Resource = Literal["TOPIC", "GROUP"]
Operation = Literal["READ", "WRITE"]


@dataclass(frozen=True)
class Grant:
    """ALLOW `operation` on a resource named `name`, or on every name starting with it."""

    resource: Resource
    name: str
    operation: Operation
    prefixed: bool = False


@dataclass(frozen=True)
class ServicePrincipal:
    # The name `Settings.kafka_sasl` knows it by; the user name is a setting.
    client: str
    grants: tuple[Grant, ...]


def _topic(name: str, operation: Operation, *, prefixed: bool = False) -> Grant:
    return Grant("TOPIC", name, operation, prefixed)


# faust's internal topics are named after the app id. They are declared in the
# catalogue (the worker runs with topic_allow_declare off, so it creates none),
# and granted by exact name: a changelog added there is granted here too.
WORKER_INTERNAL_TOPICS = tuple(t.name for t in ALL_TOPICS if t.name.startswith(f"{WORKER_APP_ID}-"))

SERVICE_PRINCIPALS: tuple[ServicePrincipal, ...] = (
    ServicePrincipal(
        "gateway",
        (
            # gateway/publisher.py: the only writer of votes.raw.
            _topic(VOTES_RAW.name, "WRITE"),
            # The config topics the gateway follows, each process in a group of its own.
            _topic(CONFIG_TOPIC_PREFIX, "READ", prefixed=True),
            Grant("GROUP", GATEWAY_CONFIG_GROUP_PREFIX, "READ", prefixed=True),
        ),
    ),
    ServicePrincipal(
        "worker",
        (
            # streams/worker.py: the faust app reads votes.raw in group `sbp-worker`;
            # the stage's BatchProducer writes accepted votes and dead letters.
            _topic(VOTES_RAW.name, "READ"),
            _topic(VOTES_ACCEPTED.name, "WRITE"),
            _topic(VOTES_DLQ.name, "WRITE"),
            # The vote-state changelog: written by the stage, read back by faust's recovery.
            *(_topic(name, op) for name in WORKER_INTERNAL_TOPICS for op in ("READ", "WRITE")),
            Grant("GROUP", WORKER_APP_ID, "READ"),
            # Its config view follows every config topic, with a group of its own.
            _topic(CONFIG_TOPIC_PREFIX, "READ", prefixed=True),
            Grant("GROUP", WORKER_CONFIG_GROUP, "READ"),
        ),
    ),
    ServicePrincipal(
        "sink",
        (
            # sinks/timescale/sink_worker.py: its own group on votes.accepted, and
            # the DLQ for what PostgreSQL refuses.
            _topic(VOTES_ACCEPTED.name, "READ"),
            _topic(VOTES_DLQ.name, "WRITE"),
            Grant("GROUP", PG_SINK_GROUP, "READ"),
            # Its DLQ-depth thread counts the retained letters by reason.
            _topic(VOTES_DLQ.name, "READ"),
            Grant("GROUP", PG_SINK_DLQ_DEPTH_GROUP, "READ"),
        ),
    ),
    ServicePrincipal(
        "admin_api",
        (
            # The outbox relay publishes configuration changes; it reads nothing.
            _topic(CONFIG_TOPIC_PREFIX, "WRITE", prefixed=True),
        ),
    ),
)

# The one super user: creates topics, SCRAM users and ACLs, and serves tests and
# drills that read any topic or reset a group's offsets. No service runs as it.
ADMIN_PRINCIPAL = "admin"
