"""The processor's dedup verdicts: first sighting, replay of that sighting, true duplicate."""

from __future__ import annotations

from typing import Any

import pytest

from streams.tables.dedup import Verdict, dedup_key, first_seen, judge


def test_key_is_tenant_then_vote_uuid_joined_by_a_pipe() -> None:
    assert dedup_key("acme", "0f8fad5b-d9cb-469f-a165-70867728950e") == (
        "acme|0f8fad5b-d9cb-469f-a165-70867728950e"
    )


def test_keys_of_different_tenants_differ_for_the_same_vote() -> None:
    assert dedup_key("acme", "u-1") != dedup_key("globex", "u-1")


def test_first_seen_records_partition_offset_and_time() -> None:
    assert first_seen(3, 1234, 1_700_000_000_000) == {"p": 3, "o": 1234, "t": 1_700_000_000_000}


def test_no_entry_is_a_first_sighting() -> None:
    assert judge(None, 0, 0) is Verdict.FIRST


def test_same_partition_and_offset_is_a_replay() -> None:
    entry = first_seen(2, 41, 1_000)
    assert judge(entry, 2, 41) is Verdict.REPLAY


def test_replay_ignores_when_it_was_first_seen() -> None:
    # A crash may replay hours later: the time stamp plays no part in the verdict.
    assert judge({"p": 2, "o": 41, "t": 99_999_999}, 2, 41) is Verdict.REPLAY


@pytest.mark.parametrize(
    ("partition", "offset"),
    [
        (2, 42),  # same partition, a later offset: the client retried
        (2, 40),  # same partition, an earlier offset
        (1, 41),  # same offset on another partition
        (0, 7),  # nothing in common
    ],
)
def test_any_other_position_is_a_duplicate(partition: int, offset: int) -> None:
    assert judge(first_seen(2, 41, 1_000), partition, offset) is Verdict.DUPLICATE


def test_an_entry_without_a_position_is_never_taken_for_a_replay() -> None:
    odd: dict[str, Any] = {"t": 5}
    assert judge(odd, 0, 0) is Verdict.DUPLICATE


def test_verdict_values_are_the_counter_suffixes() -> None:
    assert [v.value for v in Verdict] == ["first", "replay", "duplicate"]
