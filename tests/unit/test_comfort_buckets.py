"""Bucket minutes and keys, and the window metrics summed from buckets."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.tables.comfort_buckets import (
    BucketSums,
    WindowStats,
    bucket_minute,
    wilson_interval,
    window_minutes,
    zone_key,
)
from streams.tables.vote_state import BucketUpdate

Z = 1.959963984540054
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
# 2026-03-10T12:00Z as whole minutes since the epoch, worked out without the module.
AS_OF_MINUTE = (AS_OF - EPOCH) // timedelta(minutes=1)


def vote(
    value: int = 0,
    user: str = "u1",
    preference: str | None = None,
    remote: bool | None = None,
) -> dict[str, Any]:
    return {"value": value, "userRef": user, "preference": preference, "remote": remote}


def bucket_of(*votes: Mapping[str, Any]) -> dict[str, Any]:
    """A bucket as the vote stage builds it."""
    update = BucketUpdate.start(None, expires_at=0)
    for offset, v in enumerate(votes):
        update.add(offset, v)
    return update.value


def stats_of(kind: str, *buckets: Mapping[str, Any]) -> WindowStats:
    sums = BucketSums()
    for bucket in buckets:
        sums.add(bucket)
    return sums.stats(kind, unique_voters=len({u for b in buckets for u in b["u"]}))


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    p = k / n
    centre = (p + Z * Z / (2 * n)) / (1 + Z * Z / n)
    half = Z / (1 + Z * Z / n) * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return (max(0.0, centre - half), min(1.0, centre + half))


# -- keys and minutes -----------------------------------------------------------


def test_zone_key() -> None:
    assert zone_key("acme", "hq", "3F-East") == "acme|hq|3F-East"


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


# -- window stats ---------------------------------------------------------------


def test_stats_of_nothing() -> None:
    stats = BucketSums().stats("thermal", unique_voters=0)
    assert stats.n == 0
    assert stats.mean is None
    assert stats.distribution == {}
    assert stats.pct_dissatisfied is None
    assert stats.dissatisfied_ci95 is None
    assert stats.preferences == {}
    assert stats.unique_voters == 0
    assert stats.remote_share is None


def test_thermal_stats() -> None:
    b = bucket_of(
        vote(value=-3, user="a", preference="warmer", remote=True),
        vote(value=-1, user="b", preference="warmer"),
        vote(value=0, user="c", preference="no_change", remote=False),
        vote(value=2, user="a", preference="cooler"),
        vote(value=2, user="d"),
    )
    stats = stats_of("thermal", b)
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
    stats = stats_of("thermal", bucket_of(vote(value=value)))
    assert stats.pct_dissatisfied == (100.0 if dissatisfied else 0.0)


@pytest.mark.parametrize("kind", ["air", "noise", "light"])
@pytest.mark.parametrize(
    ("value", "dissatisfied"), [(1, True), (2, True), (3, False), (4, False), (5, False)]
)
def test_other_kinds_are_dissatisfied_at_two_or_below(
    kind: str, value: int, dissatisfied: bool
) -> None:
    stats = stats_of(kind, bucket_of(vote(value=value)))
    assert stats.pct_dissatisfied == (100.0 if dissatisfied else 0.0)


def test_air_stats_mean_and_ci() -> None:
    b = bucket_of(*(vote(value=v, user=f"u{i}") for i, v in enumerate([1, 4, 5, 5])))
    stats = stats_of("air", b)
    assert stats.mean == pytest.approx(3.75)
    assert stats.pct_dissatisfied == pytest.approx(25.0)
    low, high = wilson_by_hand(1, 4)
    assert stats.dissatisfied_ci95 == pytest.approx((100 * low, 100 * high))


def test_sums_add_across_buckets() -> None:
    minute_1 = bucket_of(vote(value=1, user="a"), vote(value=-2, user="b", preference="warmer"))
    minute_2 = bucket_of(vote(value=1, user="b", remote=True), vote(value=3, user="c"))
    sums = BucketSums()
    sums.add(minute_1)
    sums.add(minute_2)
    assert sums == BucketSums({1: 2, -2: 1, 3: 1}, {"warmer": 1}, 1)


def test_remote_share_counts_only_true() -> None:
    b = bucket_of(
        vote(remote=True, user="a"),
        vote(remote=None, user="b"),
        vote(remote=False, user="c"),
        vote(remote=True, user="d"),
    )
    assert stats_of("thermal", b).remote_share == pytest.approx(0.5)


def test_stats_json_shape() -> None:
    b = bucket_of(
        vote(value=3, user="a", preference="cooler"),
        vote(value=-1, user="b", remote=True),
    )
    low, high = wilson_by_hand(1, 2)
    out = stats_of("thermal", b).to_json()
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


def test_subtracting_a_bucket_undoes_adding_it_but_keeps_its_keys() -> None:
    first = bucket_of(vote(value=1, user="a", preference="warmer", remote=True))
    second = bucket_of(vote(value=2, user="b"))
    sums = BucketSums()
    sums.add(first)
    sums.add(second)
    sums.subtract(second)
    assert sums == BucketSums({1: 1, 2: 0}, {"warmer": 1}, 1)


def test_a_copy_and_the_stats_do_not_follow_later_changes() -> None:
    sums = BucketSums()
    sums.add(bucket_of(vote(value=1, preference="warmer")))
    copy = sums.copy()
    stats = sums.stats("thermal", unique_voters=1)
    sums.add(bucket_of(vote(value=2, preference="warmer")))
    assert copy == BucketSums({1: 1}, {"warmer": 1}, 0)
    assert (stats.distribution, stats.preferences) == ({1: 1}, {"warmer": 1})


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


# -- properties -----------------------------------------------------------------

PREFERENCES = st.sampled_from([None, "warmer", "no_change", "cooler"])
SCALES = {"thermal": (-3, 3), "air": (1, 5)}


@st.composite
def some_votes(draw: st.DrawFn, kind: str) -> list[dict[str, Any]]:
    low, high = SCALES[kind]
    return draw(
        st.lists(
            st.builds(
                vote,
                value=st.integers(low, high),
                user=st.sampled_from(["a", "b", "c", "d"]),
                preference=PREFERENCES if kind == "thermal" else st.none(),
                remote=st.sampled_from([None, False, True]),
            ),
            min_size=1,
            max_size=12,
        )
    )


@settings(max_examples=200, deadline=None)
@given(
    data=st.data(),
    kind=st.sampled_from(["thermal", "air"]),
    minutes=st.lists(st.integers(0, 4), min_size=12, max_size=12),
)
def test_stats_over_buckets_equal_direct_computation(
    data: st.DataObject, kind: str, minutes: list[int]
) -> None:
    votes = data.draw(some_votes(kind))
    # Spread the votes over up to five minute buckets.
    by_minute: dict[int, list[dict[str, Any]]] = {}
    for i, v in enumerate(votes):
        by_minute.setdefault(minutes[i], []).append(v)
    stats = stats_of(kind, *(bucket_of(*vs) for vs in by_minute.values()))

    values = [v["value"] for v in votes]
    n = len(values)
    unhappy = sum(1 for x in values if (abs(x) >= 2 if kind == "thermal" else x <= 2))
    assert stats.n == n
    assert stats.mean == pytest.approx(sum(values) / n)
    assert stats.distribution == dict(Counter(values))
    assert stats.pct_dissatisfied == pytest.approx(100 * unhappy / n)
    low, high = wilson_by_hand(unhappy, n)
    assert stats.dissatisfied_ci95 == pytest.approx((100 * low, 100 * high), abs=1e-9)
    assert stats.preferences == dict(
        Counter(v["preference"] for v in votes if v["preference"] is not None)
    )
    assert stats.remote_share == pytest.approx(sum(v["remote"] is True for v in votes) / n)
