"""Offset-reset planning: kafka-consumer-groups' rules on known positions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from replay.exit_codes import ExitCode
from replay.reset_plan import (
    PartitionPosition,
    PlanError,
    PlannedReset,
    ResetKind,
    ResetRequest,
    plan_reset,
)

AT = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


def pos(
    partition: int = 0,
    committed: int | None = 50,
    start: int = 10,
    end: int = 100,
    for_time: int | None = None,
) -> PartitionPosition:
    return PartitionPosition(partition, committed, start, end, for_time)


def one(request: ResetRequest, position: PartitionPosition) -> PlannedReset:
    [planned] = plan_reset(request, [position])
    return planned


def test_to_earliest_is_the_log_start_not_offset_zero() -> None:
    planned = one(ResetRequest.to_earliest(), pos(committed=50, start=10))
    assert (planned.current, planned.target, planned.delta) == (50, 10, -40)


def test_to_latest_is_the_log_end() -> None:
    planned = one(ResetRequest.to_latest(), pos(committed=50, end=100))
    assert (planned.target, planned.delta, planned.note) == (100, 50, None)


def test_to_datetime_takes_the_first_offset_at_or_after_the_time() -> None:
    planned = one(ResetRequest.to_datetime(AT), pos(committed=90, for_time=42))
    assert (planned.target, planned.delta, planned.note) == (42, -48, None)


def test_to_datetime_with_no_later_record_falls_to_the_log_end() -> None:
    planned = one(ResetRequest.to_datetime(AT), pos(committed=90, end=100, for_time=None))
    assert planned.target == 100
    assert planned.note == "no record since the time: log end"


def test_to_datetime_on_an_empty_partition_is_its_end() -> None:
    planned = one(ResetRequest.to_datetime(AT), pos(committed=None, start=7, end=7))
    assert (planned.current, planned.target, planned.delta) == (None, 7, None)


@pytest.mark.parametrize(
    ("offset", "target", "clamped"),
    [
        (10, 10, False),
        (55, 55, False),
        (100, 100, False),
        (3, 10, True),
        (-1, 10, True),
        (101, 100, True),
        (10**12, 100, True),
    ],
)
def test_to_offset_is_clamped_to_the_log_range(offset: int, target: int, clamped: bool) -> None:
    planned = one(ResetRequest.to_offset(offset), pos(start=10, end=100))
    assert planned.target == target
    assert (planned.note is not None) is clamped


@pytest.mark.parametrize(
    ("shift", "target", "note"),
    [
        (-20, 30, None),
        (+20, 70, None),
        (0, 50, None),
        (-45, 10, "5 is below the log start: clamped"),
        (+1000, 100, "1050 is past the log end: clamped"),
    ],
)
def test_shift_by_moves_from_the_committed_offset_within_the_log(
    shift: int, target: int, note: str | None
) -> None:
    planned = one(ResetRequest.shift_by(shift), pos(committed=50, start=10, end=100))
    assert (planned.target, planned.note) == (target, note)
    assert planned.delta == target - 50


def test_shift_by_refuses_a_partition_with_no_committed_offset() -> None:
    with pytest.raises(PlanError) as info:
        plan_reset(ResetRequest.shift_by(-5), [pos(0, committed=40), pos(3, committed=None)])
    assert "partition 3 has no committed offset" in info.value.message
    assert info.value.exit_code is ExitCode.USAGE


@pytest.mark.parametrize(
    "request_",
    [
        ResetRequest.to_earliest(),
        ResetRequest.to_latest(),
        ResetRequest.to_offset(60),
        ResetRequest.to_datetime(AT),
    ],
    ids=lambda r: r.kind.value,
)
def test_a_partition_with_no_committed_offset_gets_a_target_and_no_delta(
    request_: ResetRequest,
) -> None:
    planned = one(request_, pos(committed=None, for_time=60))
    assert planned.current is None
    assert planned.delta is None
    assert 10 <= planned.target <= 100


def test_a_committed_offset_below_the_log_start_still_reports_its_delta() -> None:
    # Retention deleted records the group never read: the plan shows how far it moves.
    planned = one(ResetRequest.to_earliest(), pos(committed=2, start=10))
    assert (planned.target, planned.delta) == (10, 8)


def test_partitions_come_out_in_order() -> None:
    planned = plan_reset(ResetRequest.to_latest(), [pos(5), pos(0), pos(2)])
    assert [p.partition for p in planned] == [0, 2, 5]


def test_a_naive_datetime_is_refused() -> None:
    with pytest.raises(PlanError, match="UTC offset"):
        ResetRequest.to_datetime(datetime(2026, 11, 29, 17, 0))


def test_the_request_and_plan_describe_themselves_as_json() -> None:
    at = datetime(2026, 11, 29, 18, 0, tzinfo=timezone(timedelta(hours=1)))
    assert ResetRequest.to_datetime(at).describe() == {
        "kind": "to-datetime",
        "at": "2026-11-29T18:00:00+01:00",
        "timestampMs": int(AT.timestamp() * 1000),
    }
    assert ResetRequest.shift_by(-3).describe() == {"kind": "shift-by", "value": -3}
    assert one(ResetRequest.to_offset(5), pos()).describe() == {
        "partition": 0,
        "current": 50,
        "target": 10,
        "delta": -40,
        "note": "5 is below the log start: clamped",
    }


def test_a_log_range_that_is_not_a_range_is_refused() -> None:
    with pytest.raises(ValueError, match="not a range"):
        PartitionPosition(0, None, 10, 9)


positions = st.builds(
    lambda start, length, committed, for_time: PartitionPosition(
        0, committed, start, start + length, for_time
    ),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 3 * 10**6),
    st.none() | st.integers(0, 3 * 10**6),
)
requests = st.one_of(
    st.just(ResetRequest.to_earliest()),
    st.just(ResetRequest.to_latest()),
    st.just(ResetRequest.to_datetime(AT)),
    st.integers(-(10**7), 10**7).map(ResetRequest.to_offset),
    st.integers(-(10**7), 10**7).map(ResetRequest.shift_by),
)


@given(request=requests, position=positions)
def test_every_target_lies_within_the_log(
    request: ResetRequest, position: PartitionPosition
) -> None:
    planned = one(request, position)
    assert position.log_start <= planned.target <= position.log_end
    if planned.note is None and request.kind is ResetKind.SHIFT:
        assert planned.delta == request.value
