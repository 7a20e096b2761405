"""The range re-drive's bounds per partition: offsets or times, half-open, clamped."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from replay.redrive_range import Bound, LogPosition, PartitionRange, plan_range


def test_a_bound_is_an_offset_or_a_datetime_with_an_offset() -> None:
    assert Bound.parse("42", "--from") == Bound(offset=42)
    at = Bound.parse("2026-11-29T17:00:00Z", "--to").at
    assert at == datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "why"), [("yesterday", "neither an offset"), ("2026-11-29T17:00:00", "UTC offset")]
)
def test_a_bound_that_is_neither_is_refused(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        Bound.parse(text, "--from")


def test_offsets_are_half_open_and_clamped_to_each_log() -> None:
    positions = [LogPosition(0, 0, 100), LogPosition(1, 50, 60), LogPosition(2, 0, 5)]
    assert plan_range(Bound(offset=10), Bound(offset=55), positions) == [
        PartitionRange(0, 10, 55),
        PartitionRange(1, 50, 55),
        PartitionRange(2, 5, 5),
    ]


def test_times_use_the_first_record_at_or_after_them_or_the_log_end() -> None:
    start = Bound.parse("2026-11-29T17:00:00Z", "--from")
    end = Bound.parse("2026-11-29T18:00:00Z", "--to")
    positions = [
        LogPosition(0, 0, 100, from_time_offset=20, to_time_offset=70),
        # Nothing since the end time: up to the log end.
        LogPosition(1, 0, 100, from_time_offset=90, to_time_offset=None),
        # Nothing since the start time either: an empty range.
        LogPosition(2, 0, 100, from_time_offset=None, to_time_offset=None),
    ]
    ranges = plan_range(start, end, positions)
    assert [(r.start, r.end, r.records) for r in ranges] == [
        (20, 70, 50),
        (90, 100, 10),
        (100, 100, 0),
    ]


def test_a_range_whose_end_comes_before_its_start_is_empty() -> None:
    [only] = plan_range(Bound(offset=30), Bound(offset=10), [LogPosition(0, 0, 100)])
    assert only.records == 0
