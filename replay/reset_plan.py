"""Where an offset reset moves each partition: kafka-consumer-groups' rules, as pure code.

Given, per partition, the group's committed offset, the log's start and end and (for a
reset to a datetime) the first offset at or after that time, `plan_reset` says the
target offset of each partition. No Kafka here: `replay.kafka_offsets` fetches the
inputs and applies the result, and the unit tests drive these rules directly.

The rules (those of Kafka's `kafka-consumer-groups.sh --reset-offsets`):

- `--to-earliest`: the log start (records below it were deleted by retention).
- `--to-latest`: the log end, so the group skips everything written so far.
- `--to-datetime`: the earliest offset whose timestamp is at or after the time; a
  partition with no such record (empty, or every record older) goes to the log end.
- `--to-offset N` and `--shift-by ±N`: clamped to [log start, log end], since a
  consumer cannot start below the start (deleted) or past the end (unwritten).
- `--shift-by` needs a committed offset to shift from; a partition without one is
  refused rather than shifted from a guess (Kafka refuses it too).

Invariant: every target lies within [log start, log end] of its partition.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from replay.errors import ReplayError
from replay.exit_codes import ExitCode


class ResetKind(StrEnum):
    EARLIEST = "to-earliest"
    LATEST = "to-latest"
    DATETIME = "to-datetime"
    OFFSET = "to-offset"
    SHIFT = "shift-by"


class PlanError(ReplayError):
    """The reset cannot be planned as asked; a usage error (exit 2)."""

    def __init__(self, message: str) -> None:
        super().__init__(ExitCode.USAGE, message)


@dataclass(frozen=True)
class ResetRequest:
    """One of the five reset specifications; build it with the class methods."""

    kind: ResetKind
    value: int | None = None
    at: datetime | None = None

    @classmethod
    def to_earliest(cls) -> ResetRequest:
        return cls(ResetKind.EARLIEST)

    @classmethod
    def to_latest(cls) -> ResetRequest:
        return cls(ResetKind.LATEST)

    @classmethod
    def to_datetime(cls, at: datetime) -> ResetRequest:
        # A naive time would silently mean the machine's zone: an operator on another
        # continent than the broker would reset hours away from what they meant.
        if at.tzinfo is None or at.utcoffset() is None:
            raise PlanError("the datetime needs a UTC offset, e.g. 2026-11-29T17:00:00Z")
        return cls(ResetKind.DATETIME, at=at)

    @classmethod
    def to_offset(cls, offset: int) -> ResetRequest:
        return cls(ResetKind.OFFSET, value=offset)

    @classmethod
    def shift_by(cls, delta: int) -> ResetRequest:
        return cls(ResetKind.SHIFT, value=delta)

    @property
    def timestamp_ms(self) -> int:
        """The datetime as Kafka's record timestamps count it (ms since the epoch)."""
        if self.at is None:
            raise ValueError("only a datetime reset has a timestamp")
        return int(self.at.timestamp() * 1000)

    def describe(self) -> dict[str, Any]:
        """The request as plain JSON, for the plan output and the operator log."""
        described: dict[str, Any] = {"kind": self.kind.value}
        if self.value is not None:
            described["value"] = self.value
        if self.at is not None:
            described["at"] = self.at.isoformat()
            described["timestampMs"] = self.timestamp_ms
        return described


@dataclass(frozen=True)
class PartitionPosition:
    """What Kafka says about one partition before the reset."""

    partition: int
    # The group's committed offset; None when the group never committed here.
    committed: int | None
    log_start: int
    log_end: int
    # For a datetime reset: the first offset at or after the time, None if no record is.
    offset_for_time: int | None = None

    def __post_init__(self) -> None:
        if not 0 <= self.log_start <= self.log_end:
            raise ValueError(
                f"partition {self.partition}: log start {self.log_start} and end "
                f"{self.log_end} are not a range"
            )


@dataclass(frozen=True)
class PlannedReset:
    partition: int
    current: int | None
    target: int
    # Why the target differs from the plain reading of the request, if it does.
    note: str | None = None

    @property
    def delta(self) -> int | None:
        """How far the group moves: negative re-reads records, positive skips them."""
        return None if self.current is None else self.target - self.current

    def describe(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "current": self.current,
            "target": self.target,
            "delta": self.delta,
            "note": self.note,
        }


def plan_reset(request: ResetRequest, positions: Iterable[PartitionPosition]) -> list[PlannedReset]:
    """The target of every partition, ordered by partition."""
    return [_plan_one(request, p) for p in sorted(positions, key=lambda p: p.partition)]


def _plan_one(request: ResetRequest, p: PartitionPosition) -> PlannedReset:
    kind = request.kind
    if kind is ResetKind.EARLIEST:
        return PlannedReset(p.partition, p.committed, p.log_start)
    if kind is ResetKind.LATEST:
        return PlannedReset(p.partition, p.committed, p.log_end)
    if kind is ResetKind.DATETIME:
        if p.offset_for_time is None:
            return PlannedReset(
                p.partition, p.committed, p.log_end, "no record since the time: log end"
            )
        target, note = _clamped(p.offset_for_time, p)
        return PlannedReset(p.partition, p.committed, target, note)
    if request.value is None:
        raise ValueError(f"a {kind.value} reset needs a value")
    if kind is ResetKind.OFFSET:
        target, note = _clamped(request.value, p)
        return PlannedReset(p.partition, p.committed, target, note)
    if p.committed is None:
        raise PlanError(
            f"partition {p.partition} has no committed offset to shift from; "
            "use --to-offset, --to-datetime, --to-earliest or --to-latest"
        )
    target, note = _clamped(p.committed + request.value, p)
    return PlannedReset(p.partition, p.committed, target, note)


def _clamped(offset: int, p: PartitionPosition) -> tuple[int, str | None]:
    if offset < p.log_start:
        return p.log_start, f"{offset} is below the log start: clamped"
    if offset > p.log_end:
        return p.log_end, f"{offset} is past the log end: clamped"
    return offset, None
