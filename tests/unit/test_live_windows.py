"""The live windows, kept up to date, against summing each window's buckets from scratch."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.tables.comfort_buckets import (
    WINDOWS_MIN,
    WindowStats,
    epoch_minute,
    is_dissatisfied,
    wilson_interval,
    window_minutes,
)
from streams.tables.live_buckets import LiveBuckets
from streams.tables.live_events import snapshot
from streams.tables.live_windows import LiveWindows, PastWindows
from streams.tables.vote_state import BucketUpdate

NOW = datetime(2026, 3, 10, 12, 0, 30, tzinfo=UTC)
M = epoch_minute(NOW)
ZONE_A = "acme|hq|A"
ZONE_B = "acme|hq|B"
Buckets = dict[int, Mapping[str, Any]]


# -- the reference: each window summed from scratch, as the publisher did before ---------
# A copy of comfort_buckets.summarize and zone_windows as they were, so that it
# shares no code with what is tested (BucketSums, live_windows).


def reference_summarize(kind: str, buckets: Iterable[Mapping[str, Any]]) -> WindowStats:
    distribution: dict[int, int] = {}
    preferences: dict[str, int] = {}
    voters: set[str] = set()
    remote = 0
    for bucket in buckets:
        for value, count in bucket["v"].items():
            distribution[int(value)] = distribution.get(int(value), 0) + count
        for pref, count in bucket["p"].items():
            preferences[pref] = preferences.get(pref, 0) + count
        voters.update(bucket["u"])
        remote += bucket["r"]
    n = sum(distribution.values())
    if n == 0:
        return WindowStats(0, None, {}, None, None, {}, 0, None)
    total = sum(v * c for v, c in distribution.items())
    unhappy = sum(c for v, c in distribution.items() if is_dissatisfied(kind, v))
    return WindowStats(
        n=n,
        mean=total / n,
        distribution=distribution,
        pct_dissatisfied=100.0 * unhappy / n,
        dissatisfied_ci95=tuple(100.0 * x for x in wilson_interval(unhappy, n)),  # type: ignore[arg-type]
        preferences=preferences,
        unique_voters=len(voters),
        remote_share=remote / n,
    )


def reference_windows(
    kind: str, buckets_by_minute: Mapping[int, Mapping[str, Any]], now_minute: int
) -> dict[str, dict[str, Any]]:
    return {
        f"{length}m": reference_summarize(
            kind,
            (
                buckets_by_minute[m]
                for m in window_minutes(now_minute, length)
                if m in buckets_by_minute
            ),
        ).to_json()
        for length in WINDOWS_MIN
    }


def encoded(value: Any) -> str:
    """As the snapshot writer encodes it: equal strings mean equal bytes in Redis."""
    return json.dumps(value, separators=(",", ":"))


def assert_as_reference(
    windows: LiveWindows,
    zone: str,
    kind: str,
    buckets: Mapping[int, Mapping[str, Any]],
    now_minute: int,
) -> dict[str, dict[str, Any]]:
    got = windows.of(zone, kind, buckets, now_minute)
    assert encoded(got) == encoded(reference_windows(kind, buckets, now_minute))
    past = windows.pasts.get(zone, {}).get(kind)
    if past is not None:
        # Memory: no voter is kept after their last vote has left every window.
        assert all(m > now_minute - 60 for m in past.last_vote.values())
    return got


# -- buckets --------------------------------------------------------------------


def vote(
    value: int = 0, user: str = "u1", preference: str | None = None, remote: bool | None = None
) -> dict[str, Any]:
    return {"value": value, "userRef": user, "preference": preference, "remote": remote}


def grown(bucket: Mapping[str, Any] | None, *votes: Mapping[str, Any]) -> dict[str, Any]:
    """A new bucket: `bucket` with `votes` applied, as a batch of the vote stage makes it."""
    update = BucketUpdate.start(bucket, expires_at=0)
    first = -1 if bucket is None else bucket["h"]
    for offset, v in enumerate(votes, start=first + 1):
        update.add(offset, v)
    return update.value


def raw(v: dict[str, int], u: list[str], p: dict[str, int] | None = None, r: int = 0) -> Any:
    """A bucket made by hand, with whatever counts and voters it is given."""
    return {"v": v, "p": p or {}, "u": u, "uo": 0, "r": r, "h": -1, "x": 0}


def past_of(windows: LiveWindows, zone: str, kind: str) -> PastWindows:
    return windows.pasts[zone][kind]


# -- fixed cases ----------------------------------------------------------------


def spread_buckets() -> Buckets:
    """One thermal vote a minute for the 70 minutes up to M, plus one a minute ahead.

    A vote `age` minutes old has value (age % 7) - 3, voter `u{age % 20}`, and is
    remote when age is a multiple of 3.
    """
    return {
        M - age: grown(None, vote(value=(age % 7) - 3, user=f"u{age % 20}", remote=age % 3 == 0))
        for age in range(-1, 70)
    }


def test_windows_at_a_fixed_minute() -> None:
    windows = assert_as_reference(LiveWindows(), ZONE_A, "thermal", spread_buckets(), M)
    assert list(windows) == ["5m", "15m", "60m"]

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
    assert fifteen["uniqueVoters"] == 15
    assert fifteen["remoteShare"] == pytest.approx(5 / 15)  # ages 0, 3, 6, 9, 12

    sixty = windows["60m"]
    # Ages 0..59: eight full cycles plus ages 56..59 → -3, -2, -1, 0. Ages 60..69
    # and the bucket a minute ahead are outside.
    assert sixty["n"] == 60
    assert sixty["mean"] == pytest.approx(-6 / 60)
    assert sixty["distribution"] == {"-3": 9, "-2": 9, "-1": 9, "0": 9, "1": 8, "2": 8, "3": 8}
    assert sixty["pctDissatisfied"] == pytest.approx(100 * 34 / 60)
    assert sixty["uniqueVoters"] == 20  # u0 .. u19, each several times
    assert sixty["remoteShare"] == pytest.approx(20 / 60)


def test_windows_slide_minute_by_minute() -> None:
    """One vote ten minutes old, seen by the same windows as the minutes pass."""
    buckets = {M - 10: grown(None, vote(value=3))}
    windows = LiveWindows()
    seen = {}
    for later in range(52):
        got = assert_as_reference(windows, ZONE_A, "thermal", buckets, M + later)
        seen[later] = (got["5m"]["n"], got["15m"]["n"], got["60m"]["n"])
    assert seen[0] == (0, 1, 1)
    # Minute M-10 is the oldest minute of the 15-minute window ending at M+4 ...
    assert seen[4] == (0, 1, 1)
    # ... has left it a minute later, and the 60-minute one at M+50.
    assert seen[5] == (0, 0, 1)
    assert seen[49] == (0, 0, 1)
    assert seen[50] == (0, 0, 0)


def test_a_voter_in_the_current_and_a_past_minute_counts_once() -> None:
    buckets: Buckets = {M - 3: grown(None, vote(user="a")), M: grown(None, vote(user="a"))}
    windows = LiveWindows()
    got = assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    assert [got[w]["uniqueVoters"] for w in ("5m", "15m", "60m")] == [1, 1, 1]


def test_a_current_voter_found_in_a_late_past_bucket_counts_once() -> None:
    buckets: Buckets = {M - 20: grown(None, vote(user="b")), M: grown(None, vote(user="a"))}
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    # "a" votes late in minute M-2, then again, now.
    buckets[M - 2] = grown(None, vote(user="a"))
    buckets[M] = grown(buckets[M], vote(user="a", value=1), vote(user="c"))
    got = assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    assert [got[w]["uniqueVoters"] for w in ("5m", "15m", "60m")] == [2, 2, 3]


def test_a_current_voter_whose_past_vote_leaves_a_window_counts_once() -> None:
    """Voter "a" voted 4 minutes ago and now; a minute later that old vote leaves
    the 5-minute window, but the one of the minute before is in it."""
    buckets: Buckets = {M - 4: grown(None, vote(user="a")), M: grown(None, vote(user="a"))}
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    buckets[M + 1] = grown(None, vote(user="a"), vote(user="b"))
    got = assert_as_reference(windows, ZONE_A, "thermal", buckets, M + 1)
    assert [got[w]["uniqueVoters"] for w in ("5m", "15m", "60m")] == [2, 2, 2]


def test_a_current_bucket_that_lost_a_voter_is_counted_afresh() -> None:
    buckets: Buckets = {M - 2: raw({"1": 1}, ["c"]), M: raw({"1": 2}, ["a", "b"])}
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "air", buckets, M)
    buckets[M] = raw({"1": 3}, ["b", "c", "d"])
    got = assert_as_reference(windows, ZONE_A, "air", buckets, M)
    assert got["5m"]["uniqueVoters"] == 3


def test_a_value_is_shown_while_any_bucket_of_the_window_has_it() -> None:
    """Even at a count of 0: summing from scratch shows the key of every bucket."""
    buckets: Buckets = {
        M - 59: raw({"1": 2, "2": 1}, ["a"]),
        M - 30: raw({"1": 0, "2": 1}, ["b"], {"warmer": 0}),
        M - 2: raw({"2": 1}, ["c"], {"warmer": 1}),
    }
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "air", buckets, M)
    got = assert_as_reference(windows, ZONE_A, "air", buckets, M + 1)  # M-59 has left
    assert got["60m"]["distribution"] == {"1": 0, "2": 2}
    got = assert_as_reference(windows, ZONE_A, "air", buckets, M + 31)  # and M-30 too
    assert got["60m"]["distribution"] == {"2": 1}
    assert got["60m"]["preferences"] == {"warmer": 1}


# -- what is kept, and when it is summed anew -----------------------------------


def test_a_tick_reuses_the_past_when_only_the_current_bucket_changed() -> None:
    buckets: Buckets = {M - 7: grown(None, vote(user="a")), M: grown(None, vote(user="b"))}
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    past = past_of(windows, ZONE_A, "thermal")
    buckets[M] = grown(buckets[M], vote(user="a", value=2), vote(user="c", value=-1))
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    assert past_of(windows, ZONE_A, "thermal") is past


def test_a_late_vote_is_patched_into_the_past() -> None:
    buckets: Buckets = {M - 3: grown(None, vote(user="a")), M - 40: grown(None, vote(user="b"))}
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    past = past_of(windows, ZONE_A, "thermal")
    buckets[M - 3] = grown(buckets[M - 3], vote(user="b", value=3, preference="cooler"))
    buckets[M - 20] = grown(None, vote(user="d", value=-2, remote=True))
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    assert past_of(windows, ZONE_A, "thermal") is past


@pytest.mark.parametrize(
    "replacement",
    [
        raw({"0": 1}, ["b"]),  # lost voter "a"
        raw({"1": 1}, ["a"]),  # lost value 0
        raw({"0": 1}, ["a"], {"cooler": 1}),  # lost preference "warmer"
    ],
)
def test_a_past_bucket_that_lost_something_is_summed_anew(replacement: Any) -> None:
    buckets: Buckets = {M - 3: raw({"0": 1}, ["a"], {"warmer": 1}), M - 9: raw({"0": 1}, ["a"])}
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    past = past_of(windows, ZONE_A, "thermal")
    buckets[M - 3] = replacement
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    assert past_of(windows, ZONE_A, "thermal") is not past


def test_a_summed_bucket_that_is_gone_makes_the_past_be_summed_anew() -> None:
    buckets: Buckets = {M - 3: grown(None, vote(user="a")), M - 9: grown(None, vote(user="b"))}
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    past = past_of(windows, ZONE_A, "thermal")
    del buckets[M - 3]
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    assert past_of(windows, ZONE_A, "thermal") is not past


def test_a_new_minute_slides_the_past() -> None:
    buckets = spread_buckets()
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    past = past_of(windows, ZONE_A, "thermal")
    for later in (1, 2, 5, 30):
        assert_as_reference(windows, ZONE_A, "thermal", buckets, M + later)
        assert past_of(windows, ZONE_A, "thermal") is past


@pytest.mark.parametrize("to_minute", [M - 1, M + 60])
def test_the_clock_going_back_or_past_every_window_sums_anew(to_minute: int) -> None:
    buckets = spread_buckets()
    buckets[M + 59] = grown(None, vote(user="z"))  # something left to show at M+60
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    past = past_of(windows, ZONE_A, "thermal")
    assert_as_reference(windows, ZONE_A, "thermal", buckets, to_minute)
    assert past_of(windows, ZONE_A, "thermal") is not past


def test_voters_are_forgotten_once_their_last_vote_left_every_window() -> None:
    buckets: Buckets = {
        M - 59: grown(None, vote(user="gone"), vote(user="stays")),
        M - 30: grown(None, vote(user="stays")),
    }
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M)
    assert_as_reference(windows, ZONE_A, "thermal", buckets, M + 1)
    assert past_of(windows, ZONE_A, "thermal").last_vote == {"stays": M - 30}


def test_a_kind_with_no_past_bucket_keeps_nothing() -> None:
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", {M: grown(None, vote())}, M)
    # Published a last time, once its buckets have left every window.
    assert_as_reference(windows, ZONE_B, "air", {M - 60: grown(None, vote(value=3))}, M)
    assert windows.pasts == {}


def test_forget_drops_a_zone() -> None:
    windows = LiveWindows()
    for zone in (ZONE_A, ZONE_B):
        assert_as_reference(windows, zone, "thermal", spread_buckets(), M)
    windows.forget(ZONE_A)
    assert list(windows.pasts) == [ZONE_B]


def test_a_past_not_used_for_an_hour_is_dropped() -> None:
    windows = LiveWindows()
    assert_as_reference(windows, ZONE_A, "thermal", spread_buckets(), M)
    assert_as_reference(windows, ZONE_B, "thermal", spread_buckets(), M + 59)
    assert set(windows.pasts) == {ZONE_A, ZONE_B}
    assert_as_reference(windows, ZONE_B, "thermal", spread_buckets(), M + 60)
    assert list(windows.pasts) == [ZONE_B]


# -- the publisher's snapshots, through the live cache --------------------------


def reference_snapshot(zone: str, kinds: Mapping[str, Buckets], now: datetime) -> dict[str, Any]:
    tenant_id, building_id, zone_id = zone.split("|")
    now_minute = epoch_minute(now)
    return {
        "type": "aggregate",
        "tenantId": tenant_id,
        "buildingId": building_id,
        "zoneId": zone_id,
        "floorId": None,
        "zoneName": None,
        "asOf": now.isoformat(),
        "asOfMinute": now_minute,
        "kinds": {
            kind: reference_windows(kind, buckets, now_minute) for kind, buckets in kinds.items()
        },
    }


def publish(live: LiveBuckets, now: datetime) -> list[str]:
    """A publisher tick's snapshots, checked byte for byte against the reference."""
    out = []
    for zone, kinds in live.due(epoch_minute(now), 100):
        got = encoded(snapshot(zone, kinds, now, live.windows, None))
        assert got == encoded(reference_snapshot(zone, kinds, now))
        out.append(zone)
    return out


def test_snapshots_through_the_live_cache_equal_summing_from_scratch() -> None:
    live = LiveBuckets()
    stored: dict[tuple[str, str, int], Any] = {}

    def put(partition: int, zone: str, kind: str, minute: int, *votes: Any) -> None:
        stored[zone, kind, minute] = grown(stored.get((zone, kind, minute)), *votes)
        live.put(partition, zone, kind, minute, stored[zone, kind, minute])

    for age in range(0, 70, 7):
        put(0, ZONE_A, "thermal", M - age, vote(value=age % 3, user=f"u{age % 4}"))
        put(0, ZONE_A, "air", M - age, vote(value=1 + age % 5, user=f"u{age % 5}"))
        put(1, ZONE_B, "thermal", M - age, vote(value=-(age % 4), user=f"u{age % 6}"))
    assert sorted(publish(live, NOW)) == [ZONE_A, ZONE_B]
    # Steady: the current minute changes; then a late vote, a dropped and
    # reassigned partition, and new minutes.
    put(0, ZONE_A, "thermal", M, vote(value=2, user="u9"))
    assert publish(live, NOW) == [ZONE_A]
    put(0, ZONE_A, "air", M - 12, vote(value=5, user="u0", preference="cooler"))
    assert publish(live, NOW) == [ZONE_A]
    live.drop_partition(1)
    assert ZONE_B not in live.windows.pasts
    for (zone, kind, minute), bucket in stored.items():
        if zone == ZONE_B:
            live.put(1, zone, kind, minute, bucket)
    for later in (1, 2, 30, 61):
        put(0, ZONE_A, "thermal", M + later, vote(value=-3, user=f"u{later}"))
        assert sorted(publish(live, NOW + timedelta(minutes=later))) == [ZONE_A, ZONE_B]


# -- properties -----------------------------------------------------------------

# Few voters, so that they often vote in several minutes, and in the current one.
VOTERS = [f"voter{n}" for n in range(5)]
KINDS = ("thermal", "air")
ZONES = (ZONE_A, ZONE_B)

some_votes = st.lists(
    st.builds(
        vote,
        value=st.integers(-3, 5),
        user=st.sampled_from(VOTERS),
        preference=st.sampled_from([None, "warmer", "no_change", "cooler"]),
        remote=st.sampled_from([None, False, True]),
    ),
    min_size=1,
    max_size=4,
)
# Buckets the vote stage would not make: counts of 0, a voter twice, keys
# that are not canonical ints. The windows must still be exact.
odd_buckets = st.builds(
    raw,
    v=st.dictionaries(st.sampled_from(["-3", "-1", "0", "1", "2", "01", "+2"]), st.integers(0, 3)),
    u=st.lists(st.sampled_from(VOTERS), max_size=5),
    p=st.dictionaries(st.sampled_from(["warmer", "cooler"]), st.integers(0, 2)),
    r=st.integers(0, 3),
)
zone_kind = st.tuples(st.sampled_from(ZONES), st.sampled_from(KINDS))
age = st.integers(-1, 64)  # minutes before now; -1 is a minute ahead
steps = st.lists(
    st.one_of(
        st.tuples(st.just("grow"), zone_kind, age, some_votes),
        st.tuples(st.just("grow"), zone_kind, st.integers(0, 2), some_votes),  # recent, often
        st.tuples(st.just("odd"), zone_kind, age, odd_buckets),
        st.tuples(st.just("odd"), zone_kind, st.integers(0, 2), odd_buckets),
        st.tuples(st.just("tick")),
        st.tuples(st.just("advance"), st.sampled_from([1, 1, 1, 2, 3, 14, 59, 60, -1])),
        st.tuples(st.just("drop"), st.sampled_from(ZONES)),
        st.tuples(st.just("expire")),
    ),
    max_size=60,
)


@settings(max_examples=400, deadline=None)
@given(steps)
def test_windows_always_equal_summing_from_scratch(changes: list[tuple[Any, ...]]) -> None:
    now = M
    store: dict[str, dict[str, Buckets]] = {}
    windows = LiveWindows()

    def tick() -> None:
        for zone, kinds in store.items():
            for kind, buckets in kinds.items():
                # Sometimes the buckets themselves, sometimes a copy, as due() gives.
                given_buckets = buckets if (now + len(buckets)) % 2 else dict(buckets)
                assert_as_reference(windows, zone, kind, given_buckets, now)

    for step in changes:
        match step:
            case ("grow", (zone, kind), minutes_ago, votes):
                buckets = store.setdefault(zone, {}).setdefault(kind, {})
                minute = now - minutes_ago
                buckets[minute] = grown(buckets.get(minute), *votes)
            case ("odd", (zone, kind), minutes_ago, bucket):
                store.setdefault(zone, {}).setdefault(kind, {})[now - minutes_ago] = bucket
            case ("tick",):
                tick()
            case ("advance", minutes):
                now += minutes
            case ("drop", zone):
                store.pop(zone, None)
                windows.forget(zone)
            case ("expire",):
                # As LiveBuckets.due forgets what has left every window.
                for kinds in store.values():
                    for buckets in kinds.values():
                        for minute in [m for m in buckets if m <= now - 60]:
                            del buckets[minute]
    tick()
    # Nothing is kept for a zone that is gone.
    assert set(windows.pasts) <= set(store)


def test_the_reference_is_todays_window_math() -> None:
    """The reference must not be vacuous: a hand-checked case."""
    buckets: Buckets = {M - 1: raw({"3": 1, "-3": 1}, ["a", "b"], {"warmer": 1}, 1)}
    five = reference_windows("thermal", buckets, M)["5m"]
    z2 = 1.959963984540054**2
    assert five == {
        "n": 2,
        "mean": 0.0,
        "distribution": {"-3": 1, "3": 1},
        "pctDissatisfied": 100.0,
        # Wilson with every trial a success: from n / (n + z²) to 1.
        "dissatisfiedCi95": [pytest.approx(100 * 2 / (2 + z2)), pytest.approx(100.0)],
        "preferences": {"warmer": 1},
        "uniqueVoters": 2,
        "remoteShare": 0.5,
    }
