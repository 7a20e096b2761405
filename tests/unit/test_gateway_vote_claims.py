"""The gateway's claim on a voteUuid: a mark for any zone makes the item a duplicate."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.vote_claims import Claim, check_claims, decide

EAST = b"acme|hq|3F-East"
WEST = b"acme|hq|3F-West"
UUID_A = "6f1c2a4e-8b3d-4f5a-9c7e-1d2b3a4c5e6f"
UUID_B = "0b9e8d7c-6a5f-4e3d-8c2b-1a0f9e8d7c6b"
UUID_C = "a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d"


def test_no_mark_is_published() -> None:
    assert decide(None, EAST) is Claim.fresh


def test_a_mark_for_the_same_zone_is_an_honest_resend() -> None:
    assert decide(EAST, EAST) is Claim.resend


def test_a_mark_for_another_zone_is_a_cross_zone_resend() -> None:
    assert decide(WEST, EAST) is Claim.other_zone


def test_a_mark_of_an_older_gateway_names_no_zone_and_is_a_resend() -> None:
    assert decide(b"1", EAST) is Claim.resend


def test_same_zone_and_other_zone_are_both_claimed_and_only_unmarked_are_not() -> None:
    check = check_claims(
        [(UUID_A, EAST), (UUID_B, EAST), (UUID_C, EAST)],
        [EAST, WEST, None],
    )
    assert check.claimed == {UUID_A, UUID_B}
    assert check.other_zone == [UUID_B]


def test_nothing_marked_claims_nothing() -> None:
    check = check_claims([(UUID_A, EAST), (UUID_B, WEST)], [None, None])
    assert check.claimed == set()
    assert check.other_zone == []


def test_marks_must_answer_every_candidate() -> None:
    with pytest.raises(ValueError):
        check_claims([(UUID_A, EAST), (UUID_B, EAST)], [None])


zones = st.sampled_from([EAST, WEST, b"acme|annex|1F"])
marks = st.one_of(st.none(), zones, st.just(b"1"))


@given(
    rows=st.lists(
        st.tuples(st.uuids().map(str), zones, marks), max_size=30, unique_by=lambda r: r[0]
    )
)
def test_claimed_is_exactly_the_marked_and_other_zone_exactly_the_mismatched(
    rows: list[tuple[str, bytes, bytes | None]],
) -> None:
    check = check_claims([(u, zone) for u, zone, _ in rows], [mark for _, _, mark in rows])
    assert check.claimed == {u for u, _, mark in rows if mark is not None}
    assert check.other_zone == [
        u for u, zone, mark in rows if mark is not None and mark != zone and mark != b"1"
    ]
