"""The range re-drive's bounds: `--from` and `--to` as offsets or times, per partition.

Pure: `replay.kafka_records` looks up the logs' ranges and the offsets for the times,
and these rules turn them into the half-open range [start, end) of each partition.

- An offset bound is that offset; a time bound is the first record at or after the
  time (the log end where there is none), as an offset reset to a datetime.
- `--from` is inclusive and `--to` exclusive, so two consecutive ranges never
  re-drive a record twice, and `--from T --to T` re-drives nothing.
- Both are clamped to the log (records below its start are gone, none exist past
  its end yet); a partition whose range is empty re-drives nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Bound:
    offset: int | None = None
    at: datetime | None = None

    @classmethod
    def parse(cls, text: str, option: str) -> Bound:
        """An offset (digits) or an ISO 8601 datetime with a UTC offset."""
        if text.isdigit():
            return cls(offset=int(text))
        try:
            at = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{option} {text!r} is neither an offset nor an ISO 8601 datetime"
            ) from None
        if at.utcoffset() is None:
            raise ValueError(f"{option} needs a UTC offset, e.g. 2026-11-29T17:00:00Z")
        return cls(at=at)

    @property
    def timestamp_ms(self) -> int | None:
        return None if self.at is None else int(self.at.timestamp() * 1000)

    def describe(self) -> dict[str, Any]:
        if self.at is not None:
            return {"at": self.at.isoformat(), "timestampMs": self.timestamp_ms}
        return {"offset": self.offset}


@dataclass(frozen=True)
class PartitionRange:
    partition: int
    start: int
    end: int

    @property
    def records(self) -> int:
        return max(0, self.end - self.start)

    def describe(self) -> dict[str, Any]:
        return {
            "partition": self.partition,
            "start": self.start,
            "end": self.end,
            "records": self.records,
        }


@dataclass(frozen=True)
class LogPosition:
    """What Kafka says about one partition: its log range and the offsets for the times."""

    partition: int
    log_start: int
    log_end: int
    # The first offset at or after each bound's time; None: no record is (or no time).
    from_time_offset: int | None = None
    to_time_offset: int | None = None


def plan_range(first: Bound, last: Bound, positions: list[LogPosition]) -> list[PartitionRange]:
    ranges = []
    for p in sorted(positions, key=lambda p: p.partition):
        start = _resolve(first, p.from_time_offset, p)
        end = _resolve(last, p.to_time_offset, p)
        ranges.append(PartitionRange(p.partition, start, max(start, end)))
    return ranges


def _resolve(bound: Bound, time_offset: int | None, p: LogPosition) -> int:
    if bound.offset is not None:
        wanted = bound.offset
    else:
        wanted = p.log_end if time_offset is None else time_offset
    return min(max(wanted, p.log_start), p.log_end)
