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


VOTE_PARTITIONS = 4

# The processor's dedup entries must outlive what votes.raw keeps, so a reset to
# earliest can never double-count; today they are never deleted (an expiry sweep
# at this retention plus a margin is open work).
VOTES_RAW_RETENTION_MS = 14 * DAY_MS

VOTES_RAW = TopicSpec(
    name="votes.raw",
    partitions=VOTE_PARTITIONS,
    key="tenantId|voteUuid",
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


DEDUP_TABLE = "vote-dedup"
BUCKETS_TABLE = "comfort-buckets"
VOTE_DEDUP_CHANGELOG = changelog(DEDUP_TABLE, VOTES_RAW)
COMFORT_BUCKETS_CHANGELOG = changelog(BUCKETS_TABLE, VOTES_ACCEPTED)

ALL_TOPICS: tuple[TopicSpec, ...] = (
    VOTES_RAW,
    VOTES_ACCEPTED,
    VOTES_DLQ,
    VOTE_DEDUP_CHANGELOG,
    COMFORT_BUCKETS_CHANGELOG,
)
