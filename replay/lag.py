"""Consumer lag, as pure data: per partition, how far a group's committed offset trails
the log end, and the total per group.

Lag is `log end - committed`, as kafka-consumer-groups reports it. A partition the
group never committed has no lag to report (shown as "-"), not a lag of zero: the
group's `auto.offset.reset` decides where it would start, which only it knows. It is
left out of the group's total, which therefore counts only known lag.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PartitionLag:
    topic: str
    partition: int
    committed: int | None
    log_end: int
    # Shown by `offsets show`, where a reset's range matters; `lag` does not need it.
    log_start: int | None = None

    @property
    def lag(self) -> int | None:
        # Not clamped at zero: a committed offset past the log end (a topic recreated
        # under a live group) is an anomaly the operator should see, not a zero.
        return None if self.committed is None else self.log_end - self.committed

    def describe(self) -> dict[str, Any]:
        described: dict[str, Any] = {
            "topic": self.topic,
            "partition": self.partition,
            "committed": self.committed,
            "logEnd": self.log_end,
            "lag": self.lag,
        }
        if self.log_start is not None:
            described["logStart"] = self.log_start
        return described


@dataclass(frozen=True)
class GroupLag:
    group: str
    # The coordinator's view: STABLE, EMPTY, DEAD, PREPARING_REBALANCE, ...
    state: str
    members: int
    partitions: list[PartitionLag] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(p.lag for p in self.partitions if p.lag is not None)

    def describe(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "state": self.state,
            "members": self.members,
            "totalLag": self.total,
            "partitions": [p.describe() for p in self.sorted_partitions()],
        }

    def sorted_partitions(self) -> list[PartitionLag]:
        return sorted(self.partitions, key=lambda p: (p.topic, p.partition))
