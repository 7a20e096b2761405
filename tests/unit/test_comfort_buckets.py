"""Bucket partials, their idempotence under replay, and the window metrics summed from them."""

from __future__ import annotations

import math
import uuid
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.tables.comfort_buckets import (
    add_vote,
    bucket_key,
    bucket_minute,
    split_bucket_key,
    summarize,
    wilson_interval,
    window_minutes,
    zone_key,
    zone_windows,
)

Z = 1.959963984540054
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
# 2026-03-10T12:00Z as whole minutes since the epoch, worked out without the module.
AS_OF_MINUTE = (AS_OF - EPOCH) // timedelta(minutes=1)
UUID_A = "0c3f5a8e-1b2d-4e6f-8a9b-0c1d2e3f4a5b"


def vote(
    vote_uuid: str | uuid.UUID = UUID_A,
    value: int = 0,
    user: str = "u1",
    preference: str | None = None,
    remote: bool | None = None,
) -> dict[str, Any]:
    return {
        "voteUuid": vote_uuid,
        "value": value,
        "userRef": user,
        "preference": preference,
        "remote": remote,
    }


def bucket_of(*votes: Mapping[str, Any]) -> dict[str, Any]:
    bucket: dict[str, Any] | None = None
    for v in votes:
        bucket = add_vote(bucket, v) or bucket
    assert bucket is not None
    return bucket


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


# -- keys and minutes -----------------------------------------------------------


def test_zone_and_bucket_keys() -> None:
    zone = zone_key("acme", "hq", "3F-East")
    assert zone == "acme|hq|3F-East"
    assert bucket_key(zone, "thermal", 29_549_520) == "acme|hq|3F-East|thermal|29549520"
    assert split_bucket_key("acme|hq|3F-East|thermal|29549520") == (
        "acme|hq|3F-East",
        "thermal",
        29_549_520,
    )


def test_as_of_minute_is_what_the_tests_think_it_is() -> None:
    # 20522 days from the epoch to 2026-03-10, plus 12 hours.
    assert AS_OF_MINUTE == 20_522 * 1440 + 12 * 60


def test_bucket_follows_client_ts_when_it_is_earlier() -> None:
    client = AS_OF - timedelta(minutes=7, seconds=30)
    assert bucket_minute(client, AS_OF) == AS_OF_MINUTE - 8


def test_seconds_within_a_minute_stay_in_that_minute() -> None:
    assert bucket_minute(AS_OF + timedelta(seconds=59), AS_OF + timedelta(minutes=5)) == (
        AS_OF_MINUTE
    )


def test_bucket_is_clamped_to_received_at() -> None:
    received = AS_OF + timedelta(minutes=3, seconds=10)
    assert bucket_minute(received + timedelta(minutes=90), received) == AS_OF_MINUTE + 3


def test_clamping_compares_instants_not_wall_clocks() -> None:
    # 13:05+01:00 is 12:05Z, after a 12:03Z receipt: the bucket is 12:03.
    client = datetime(2026, 3, 10, 13, 5, tzinfo=timezone(timedelta(hours=1)))
    received = datetime(2026, 3, 10, 12, 3, 20, tzinfo=UTC)
    assert bucket_minute(client, received) == AS_OF_MINUTE + 3
    # 11:30-01:00 is 12:30Z: also clamped; 12:01+01:00 is 11:01Z: kept.
    assert bucket_minute(
        datetime(2026, 3, 10, 11, 30, tzinfo=timezone(-timedelta(hours=1))), received
    ) == (AS_OF_MINUTE + 3)
    assert bucket_minute(
        datetime(2026, 3, 10, 12, 1, tzinfo=timezone(timedelta(hours=1))), received
    ) == (AS_OF_MINUTE - 59)


# -- add_vote -------------------------------------------------------------------


def test_first_vote_builds_a_bucket() -> None:
    assert add_vote(None, vote(value=-2, user="u9", preference="warmer", remote=True)) == {
        "v": {"-2": 1},
        "p": {"warmer": 1},
        "u": ["u9"],
        "ids": [UUID_A],
        "r": 1,
    }


def test_votes_accumulate() -> None:
    b = bucket_of(
        vote("11111111-1111-4111-8111-111111111111", value=1, user="a"),
        vote("22222222-2222-4222-8222-222222222222", value=1, user="b", remote=False),
        vote("33333333-3333-4333-8333-333333333333", value=-3, user="a", preference="warmer"),
    )
    assert b["v"] == {"1": 2, "-3": 1}
    assert b["p"] == {"warmer": 1}
    assert b["u"] == ["a", "b"]
    assert b["r"] == 0
    assert len(b["ids"]) == 3


def test_the_same_vote_twice_is_none_the_second_time() -> None:
    first = add_vote(None, vote(UUID_A, value=2))
    assert first is not None
    assert add_vote(first, vote(UUID_A, value=2)) is None


def test_a_str_id_then_its_uuid_replay_is_recognised() -> None:
    first = add_vote(None, vote(UUID_A, value=2))
    assert first is not None
    assert add_vote(first, vote(uuid.UUID(UUID_A), value=2)) is None


def test_a_uuid_id_then_its_str_replay_is_recognised() -> None:
    first = add_vote(None, vote(uuid.UUID(UUID_A), value=2))
    assert first is not None
    assert first["ids"] == [UUID_A]
    assert add_vote(first, vote(UUID_A, value=2)) is None


def test_add_vote_does_not_modify_the_stored_bucket() -> None:
    stored = add_vote(None, vote("11111111-1111-4111-8111-111111111111", value=1, user="a"))
    assert stored is not None
    snapshot = {k: (v.copy() if isinstance(v, dict | list) else v) for k, v in stored.items()}
    add_vote(stored, vote(UUID_A, value=1, user="b", preference="cooler", remote=True))
    assert stored == snapshot


# -- Wilson interval ------------------------------------------------------------


def test_wilson_three_of_five() -> None:
    low, high = wilson_interval(3, 5)
    expected = wilson_by_hand(3, 5)
    assert low == pytest.approx(expected[0], rel=1e-12)
    assert high == pytest.approx(expected[1], rel=1e-12)
    # The published figure for 3/5: 23.07 % to 88.24 %.
    assert (round(low, 4), round(high, 4)) == (0.2307, 0.8824)


def test_wilson_with_no_trials_is_zero_width() -> None:
    assert wilson_interval(0, 0) == (0.0, 0.0)


def test_wilson_with_no_successes_starts_at_zero() -> None:
    low, high = wilson_interval(0, 10)
    assert low == pytest.approx(0.0, abs=1e-15)
    assert low >= 0.0
    # With p = 0 the upper bound reduces to z² / (n + z²).
    assert high == pytest.approx(Z * Z / (10 + Z * Z), rel=1e-12)


def test_wilson_with_all_successes_ends_at_one() -> None:
    low, high = wilson_interval(10, 10)
    assert low == pytest.approx(10 / (10 + Z * Z), rel=1e-12)
    assert high == pytest.approx(1.0, abs=1e-15)
    assert high <= 1.0


# -- summarize ------------------------------------------------------------------


def test_summary_of_nothing() -> None:
    stats = summarize("thermal", [])
    assert stats.n == 0
    assert stats.mean is None
    assert stats.distribution == {}
    assert stats.pct_dissatisfied is None
    assert stats.dissatisfied_ci95 is None
    assert stats.preferences == {}
    assert stats.unique_voters == 0
    assert stats.remote_share is None


def test_thermal_summary() -> None:
    ids = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]
    b = bucket_of(
        vote(ids[0], value=-3, user="a", preference="warmer", remote=True),
        vote(ids[1], value=-1, user="b", preference="warmer"),
        vote(ids[2], value=0, user="c", preference="no_change", remote=False),
        vote(ids[3], value=2, user="a", preference="cooler"),
        vote(ids[4], value=2, user="d"),
    )
    stats = summarize("thermal", [b])
    assert stats.n == 5
    assert stats.mean == pytest.approx(0.0)  # (-3 - 1 + 0 + 2 + 2) / 5
    assert stats.distribution == {-3: 1, -1: 1, 0: 1, 2: 2}
    # |v| >= 2: -3, 2, 2 → 3 of 5.
    assert stats.pct_dissatisfied == pytest.approx(60.0)
    low, high = wilson_by_hand(3, 5)
    assert stats.dissatisfied_ci95 == pytest.approx((100 * low, 100 * high))
    assert stats.preferences == {"warmer": 2, "no_change": 1, "cooler": 1}
    assert stats.unique_voters == 4
    assert stats.remote_share == pytest.approx(0.2)


@pytest.mark.parametrize(
    ("value", "dissatisfied"),
    [(-3, True), (-2, True), (-1, False), (0, False), (1, False), (2, True), (3, True)],
)
def test_thermal_dissatisfaction_is_two_or_more_from_neutral(
    value: int, dissatisfied: bool
) -> None:
    stats = summarize("thermal", [bucket_of(vote(value=value))])
    assert stats.pct_dissatisfied == (100.0 if dissatisfied else 0.0)


@pytest.mark.parametrize("kind", ["air", "noise", "light"])
@pytest.mark.parametrize(
    ("value", "dissatisfied"), [(1, True), (2, True), (3, False), (4, False), (5, False)]
)
def test_other_kinds_are_dissatisfied_at_two_or_below(
    kind: str, value: int, dissatisfied: bool
) -> None:
    stats = summarize(kind, [bucket_of(vote(value=value))])
    assert stats.pct_dissatisfied == (100.0 if dissatisfied else 0.0)


def test_air_summary_mean_and_ci() -> None:
    ids = [f"00000000-0000-4000-8000-00000000001{i}" for i in range(4)]
    b = bucket_of(*(vote(i, value=v, user=i) for i, v in zip(ids, [1, 4, 5, 5], strict=True)))
    stats = summarize("air", [b])
    assert stats.mean == pytest.approx(3.75)
    assert stats.pct_dissatisfied == pytest.approx(25.0)
    low, high = wilson_by_hand(1, 4)
    assert stats.dissatisfied_ci95 == pytest.approx((100 * low, 100 * high))


def test_unique_voters_are_counted_across_buckets() -> None:
    ids = [f"00000000-0000-4000-8000-00000000002{i}" for i in range(4)]
    minute_1 = bucket_of(vote(ids[0], user="a"), vote(ids[1], user="b"))
    minute_2 = bucket_of(vote(ids[2], user="b"), vote(ids[3], user="c"))
    stats = summarize("thermal", [minute_1, minute_2])
    assert stats.n == 4
    assert stats.unique_voters == 3


def test_remote_share_counts_only_true() -> None:
    ids = [f"00000000-0000-4000-8000-00000000003{i}" for i in range(4)]
    b = bucket_of(
        vote(ids[0], remote=True),
        vote(ids[1], remote=None),
        vote(ids[2], remote=False),
        vote(ids[3], remote=True),
    )
    assert summarize("thermal", [b]).remote_share == pytest.approx(0.5)


def test_summary_json_shape() -> None:
    ids = [f"00000000-0000-4000-8000-00000000004{i}" for i in range(2)]
    b = bucket_of(
        vote(ids[0], value=3, user="a", preference="cooler"),
        vote(ids[1], value=-1, user="b", remote=True),
    )
    low, high = wilson_by_hand(1, 2)
    out = summarize("thermal", [b]).to_json()
    assert out == {
        "n": 2,
        "mean": pytest.approx(1.0),
        "distribution": {"-1": 1, "3": 1},
        "pctDissatisfied": pytest.approx(50.0),
        "dissatisfiedCi95": [pytest.approx(100 * low), pytest.approx(100 * high)],
        "preferences": {"cooler": 1},
        "uniqueVoters": 2,
        "remoteShare": pytest.approx(0.5),
    }
    assert list(out["distribution"]) == ["-1", "3"]


# -- windows --------------------------------------------------------------------


def test_a_five_minute_window_ending_at_m_covers_m_minus_4_to_m() -> None:
    m = AS_OF_MINUTE
    assert list(window_minutes(m, 5)) == [m - 4, m - 3, m - 2, m - 1, m]
    assert (m - 5) not in window_minutes(m, 5)
    assert (m + 1) not in window_minutes(m, 5)


@pytest.mark.parametrize("length", [1, 5, 15, 60])
def test_window_edges(length: int) -> None:
    m = AS_OF_MINUTE
    minutes = window_minutes(m, length)
    assert len(minutes) == length
    assert minutes[0] == m - length + 1
    assert minutes[-1] == m


def spread_buckets() -> dict[int, dict[str, Any]]:
    """One thermal vote a minute for the 70 minutes up to AS_OF, plus one a minute ahead.

    A vote `age` minutes old has value (age % 7) - 3, voter `u{age % 20}`, and is
    remote when age is a multiple of 3.
    """
    buckets: dict[int, dict[str, Any]] = {}
    for age in range(-1, 70):
        b = add_vote(
            None,
            vote(
                str(uuid.UUID(int=age + 1000)),
                value=(age % 7) - 3,
                user=f"u{age % 20}",
                remote=age % 3 == 0,
            ),
        )
        assert b is not None
        buckets[AS_OF_MINUTE - age] = b
    return buckets


def test_zone_windows_at_a_fixed_as_of_minute() -> None:
    windows = zone_windows("thermal", spread_buckets(), AS_OF_MINUTE)
    assert set(windows) == {"5m", "15m", "60m"}

    five = windows["5m"]
    # Ages 0..4 → values -3, -2, -1, 0, 1.
    assert five["n"] == 5
    assert five["mean"] == pytest.approx(-1.0)
    assert five["distribution"] == {"-3": 1, "-2": 1, "-1": 1, "0": 1, "1": 1}
    assert five["pctDissatisfied"] == pytest.approx(40.0)
    assert five["uniqueVoters"] == 5
    assert five["remoteShare"] == pytest.approx(2 / 5)  # ages 0 and 3

    fifteen = windows["15m"]
    # Ages 0..14: two full cycles of -3..3 plus age 14 → -3.
    assert fifteen["n"] == 15
    assert fifteen["mean"] == pytest.approx(-3 / 15)
    assert fifteen["distribution"] == {"-3": 3, "-2": 2, "-1": 2, "0": 2, "1": 2, "2": 2, "3": 2}
    assert fifteen["pctDissatisfied"] == pytest.approx(100 * 9 / 15)
    low, high = wilson_by_hand(9, 15)
    assert fifteen["dissatisfiedCi95"] == [pytest.approx(100 * low), pytest.approx(100 * high)]
    assert fifteen["uniqueVoters"] == 15
    assert fifteen["remoteShare"] == pytest.approx(5 / 15)  # ages 0, 3, 6, 9, 12

    sixty = windows["60m"]
    # Ages 0..59: eight full cycles plus ages 56..59 → -3, -2, -1, 0. Ages 60..69
    # and the bucket a minute ahead are outside.
    assert sixty["n"] == 60
    assert sixty["mean"] == pytest.approx(-6 / 60)
    assert sixty["distribution"] == {"-3": 9, "-2": 9, "-1": 9, "0": 9, "1": 8, "2": 8, "3": 8}
    assert sixty["pctDissatisfied"] == pytest.approx(100 * 34 / 60)
    low, high = wilson_by_hand(34, 60)
    assert sixty["dissatisfiedCi95"] == [pytest.approx(100 * low), pytest.approx(100 * high)]
    assert sixty["uniqueVoters"] == 20
    assert sixty["remoteShare"] == pytest.approx(20 / 60)


def test_windows_slide_with_the_as_of_minute() -> None:
    buckets = {AS_OF_MINUTE - 10: bucket_of(vote(value=3))}
    at_plus_0 = zone_windows("thermal", buckets, AS_OF_MINUTE)
    assert (at_plus_0["5m"]["n"], at_plus_0["15m"]["n"], at_plus_0["60m"]["n"]) == (0, 1, 1)
    # Minute M-10 is the oldest minute of the 15-minute window ending at M+4 ...
    at_plus_4 = zone_windows("thermal", buckets, AS_OF_MINUTE + 4)
    assert at_plus_4["15m"]["n"] == 1
    # ... and has left it a minute later.
    at_plus_5 = zone_windows("thermal", buckets, AS_OF_MINUTE + 5)
    assert (at_plus_5["15m"]["n"], at_plus_5["60m"]["n"]) == (0, 1)
    at_plus_50 = zone_windows("thermal", buckets, AS_OF_MINUTE + 50)
    assert at_plus_50["60m"]["n"] == 0
    assert at_plus_50["60m"]["mean"] is None
    assert at_plus_50["60m"]["dissatisfiedCi95"] is None


# -- properties -----------------------------------------------------------------

PREFERENCES = st.sampled_from([None, "warmer", "no_change", "cooler"])
SCALES = {"thermal": (-3, 3), "air": (1, 5)}
Delivery = tuple[list[dict[str, Any]], list[dict[str, Any]]]


@st.composite
def with_replays(draw: st.DrawFn, kind: str = "thermal") -> Delivery:
    """Distinct votes, and a delivery of them with replays (ids as str or as uuid.UUID)."""
    low, high = SCALES[kind]
    ids = draw(st.lists(st.uuids(), min_size=1, max_size=12, unique=True))
    unique = [
        vote(
            str(i),
            value=draw(st.integers(low, high)),
            user=draw(st.sampled_from(["a", "b", "c", "d"])),
            preference=draw(PREFERENCES) if kind == "thermal" else None,
            remote=draw(st.sampled_from([None, False, True])),
        )
        for i in ids
    ]
    picks = draw(st.lists(st.integers(0, len(unique) - 1), min_size=1, max_size=40))
    picks += range(len(unique))  # every vote is delivered at least once
    delivered = []
    for i in picks:
        v = dict(unique[i])
        if draw(st.booleans()):
            v["voteUuid"] = uuid.UUID(v["voteUuid"])
        delivered.append(v)
    return unique, delivered


@settings(max_examples=200, deadline=None)
@given(with_replays())
def test_replays_leave_the_bucket_as_if_each_vote_came_once(case: Delivery) -> None:
    _, delivered = case
    bucket: dict[str, Any] | None = None
    seen: list[str] = []
    for v in delivered:
        updated = add_vote(bucket, v)
        vote_id = str(v["voteUuid"])
        assert (updated is None) == (vote_id in seen)
        if updated is not None:
            bucket = updated
            seen.append(vote_id)

    once: dict[str, Any] | None = None
    first_occurrence = {str(v["voteUuid"]): v for v in reversed(delivered)}
    for vote_id in seen:
        once = add_vote(once, first_occurrence[vote_id])
    assert bucket == once


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["thermal", "air"]),
    minutes=st.lists(st.integers(0, 4), min_size=12, max_size=12),
)
def test_summary_over_buckets_equals_direct_computation(
    data: st.DataObject, kind: str, minutes: list[int]
) -> None:
    unique, delivered = data.draw(with_replays(kind))
    # Spread the votes over up to five minute buckets; replays land where the original did.
    minute_of = {v["voteUuid"]: minutes[i] for i, v in enumerate(unique)}
    buckets: dict[int, dict[str, Any]] = {}
    for v in delivered:
        m = minute_of[str(v["voteUuid"])]
        updated = add_vote(buckets.get(m), v)
        if updated is not None:
            buckets[m] = updated
    stats = summarize(kind, buckets.values())

    values = [v["value"] for v in unique]
    n = len(values)
    unhappy = sum(1 for x in values if (abs(x) >= 2 if kind == "thermal" else x <= 2))
    assert stats.n == n
    assert stats.mean == pytest.approx(sum(values) / n)
    assert stats.distribution == dict(Counter(values))
    assert stats.pct_dissatisfied == pytest.approx(100 * unhappy / n)
    low, high = wilson_by_hand(unhappy, n)
    assert stats.dissatisfied_ci95 == pytest.approx((100 * low, 100 * high), abs=1e-9)
    assert stats.preferences == dict(
        Counter(v["preference"] for v in unique if v["preference"] is not None)
    )
    assert stats.unique_voters == len({v["userRef"] for v in unique})
    assert stats.remote_share == pytest.approx(sum(v["remote"] is True for v in unique) / n)
