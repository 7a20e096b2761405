"""Every Kafka topic the platform owns, declared once.

`sbp dev up` (and any deploy) applies this list idempotently through
`streams.topic_admin`. Partition counts are fixed here: a key's partition
depends on them, so a change is refused, never applied silently. Topics that
are co-partitioned (read together by one agent, keyed alike) must share a count.
docs/topics.md is the human catalogue of this file; a unit test keeps the two in step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    key: str
    cleanup_policy: str = "delete"
    # None for compacted topics: changelogs and snapshots are never time-trimmed.
    retention_ms: int | None = 14 * DAY_MS
    extra_config: dict[str, str] = field(default_factory=dict)

    def config(self) -> dict[str, str]:
        conf = {"cleanup.policy": self.cleanup_policy, **self.extra_config}
        if self.retention_ms is not None:
            conf["retention.ms"] = str(self.retention_ms)
        return conf


# 24 partitions: the unit of parallelism for the vote stage and the sink. 24
# divides evenly among 1, 2, 3, 4, 6, 8, 12 and 24 workers, and at the measured
# ~2k votes/s per worker core it leaves room for an order of magnitude of growth
# before a re-partition (which is a new topic plus a rebuild, never in place).
VOTE_PARTITIONS = 24

# The processor's progress is kept in its own state, so an offset reset never
# re-counts; votes.raw keeps a week plus margin for operators to re-drive from.
VOTES_RAW_RETENTION_MS = 14 * DAY_MS

# Keyed by zone so one partition holds a zone's dedup entries, its buckets and
# its votes in order: the vote stage needs no second hop (docs/topics.md).
VOTES_RAW = TopicSpec(
    name="votes.raw",
    partitions=VOTE_PARTITIONS,
    key="tenantId|buildingId|zoneId",
    retention_ms=VOTES_RAW_RETENTION_MS,
)
VOTES_ACCEPTED = TopicSpec(
    name="votes.accepted",
    partitions=VOTE_PARTITIONS,
    key="tenantId|buildingId|zoneId",
    retention_ms=14 * DAY_MS,
)
VOTES_DLQ = TopicSpec(
    name="votes.dlq",
    partitions=VOTE_PARTITIONS,
    key="the failed record's original key",
    retention_ms=30 * DAY_MS,
)

WORKER_APP_ID = "sbp-worker"


def changelog(table: str, source: TopicSpec) -> TopicSpec:
    """A faust table's changelog: compacted only, co-partitioned with its source topic."""
    return TopicSpec(
        name=f"{WORKER_APP_ID}-{table}-changelog",
        partitions=source.partitions,
        key=f"the {table} table key",
        cleanup_policy="compact",
        retention_ms=None,
    )


# One table holds a partition's dedup entries, its live buckets and its
# progress marker, so one changelog partition orders them (streams/tables/vote_state.py).
VOTE_STATE_TABLE = "vote-state"
VOTE_STATE_CHANGELOG = changelog(VOTE_STATE_TABLE, VOTES_RAW)

# Configuration the tenant service publishes through its outbox (admin/outbox_relay.py):
# compacted, so a reader that starts from the beginning ends with every key's
# latest state. One partition: the topics are small, every reader reads them whole,
# and one partition keeps the relay's order for every key.
CONFIG_ZONES = TopicSpec(
    name="config.zones",
    partitions=1,
    key="tenantId|buildingId|zoneId",
    cleanup_policy="compact",
    retention_ms=None,
)
CONFIG_TENANT_SETTINGS = TopicSpec(
    name="config.tenant-settings",
    partitions=1,
    key="tenantId",
    cleanup_policy="compact",
    retention_ms=None,
)

# The PostgreSQL sink's own consumer group on votes.accepted.
PG_SINK_GROUP = "sbp-pg-sink"
# The sink's DLQ-depth reader: assigned partitions only, it never joins nor commits,
# but the broker still checks a READ grant on the group it names.
PG_SINK_DLQ_DEPTH_GROUP = "sbp-pg-sink-dlq-depth"

ALL_TOPICS: tuple[TopicSpec, ...] = (
    VOTES_RAW,
    VOTES_ACCEPTED,
    VOTES_DLQ,
    VOTE_STATE_CHANGELOG,
    CONFIG_ZONES,
    CONFIG_TENANT_SETTINGS,
)
