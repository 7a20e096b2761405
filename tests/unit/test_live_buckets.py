"""The live cache of buckets per partition and zone, and which zones a flush publishes."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.tables.comfort_buckets import LONGEST_WINDOW_MIN
from streams.tables.live_buckets import LiveBuckets

M = 29_552_400  # 2026-03-10T12:00Z in epoch minutes
ZONE_A = "acme|hq|A"
ZONE_B = "acme|hq|B"
ZONE_C = "acme|hq|C"


def b(n: int) -> dict[str, Any]:
    """A bucket, told apart by its one count."""
    return {"v": {"0": n}, "p": {}, "u": [], "uo": 0, "r": 0, "h": n, "x": 0}


def zones(due: list[tuple[str, dict[str, dict[int, Any]]]]) -> list[str]:
    return [zone for zone, _kinds in due]


def settled(live: LiveBuckets, minute: int) -> LiveBuckets:
    """Flush everything due at `minute`, so that only new changes are dirty."""
    while live.due(minute, 1_000):
        pass
    return live


def test_nothing_is_due_on_an_empty_cache() -> None:
    assert LiveBuckets().due(M, 10) == []


def test_a_put_makes_its_zone_due_with_its_buckets() -> None:
    live = LiveBuckets()
    live.put(3, ZONE_A, "thermal", M - 1, b(1))
    assert live.due(M, 10) == [(ZONE_A, {"thermal": {M - 1: b(1)}})]
    assert live.partitions() == {3}


def test_changes_to_a_zone_coalesce_into_one_publish() -> None:
    live = settled(LiveBuckets(), M)
    live.put(0, ZONE_A, "thermal", M, b(1))
    live.put(0, ZONE_A, "thermal", M, b(2))
    live.put(0, ZONE_A, "air", M - 2, b(3))
    live.put(0, ZONE_A, "thermal", M - 1, b(4))
    assert live.due(M, 10) == [(ZONE_A, {"thermal": {M: b(2), M - 1: b(4)}, "air": {M - 2: b(3)}})]
    # Published: nothing is due until something changes or the minute turns.
    assert live.due(M, 10) == []


def test_only_changed_zones_are_due_within_a_minute() -> None:
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M, b(1))
    live.put(1, ZONE_B, "thermal", M, b(1))
    settled(live, M)
    live.put(1, ZONE_B, "thermal", M, b(2))
    assert zones(live.due(M, 10)) == [ZONE_B]


def test_a_new_minute_makes_every_cached_zone_due() -> None:
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M, b(1))
    live.put(1, ZONE_B, "noise", M - 30, b(1))
    live.put(2, ZONE_C, "air", M - 59, b(1))
    settled(live, M)
    assert sorted(zones(live.due(M + 1, 10))) == [ZONE_A, ZONE_B, ZONE_C]
    assert live.due(M + 1, 10) == []


def test_the_first_flush_after_a_fill_publishes_every_zone() -> None:
    # Filled from the state on assignment, then the clock's first minute.
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M - 10, b(1))
    live.dirty.clear()
    assert zones(live.due(M, 10)) == [ZONE_A]


def test_a_kind_leaving_the_longest_window_is_published_once_more_then_forgotten() -> None:
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M, b(1))
    live.put(0, ZONE_A, "air", M, b(2))
    settled(live, M)
    # Still inside the 60-minute window at M + 59.
    assert live.due(M + LONGEST_WINDOW_MIN - 1, 10) == [
        (ZONE_A, {"thermal": {M: b(1)}, "air": {M: b(2)}})
    ]
    live.put(0, ZONE_A, "air", M + 60, b(3))
    # At M + 60 the minute M has left every window: one last publish with it...
    assert live.due(M + LONGEST_WINDOW_MIN, 10) == [
        (ZONE_A, {"thermal": {M: b(1)}, "air": {M: b(2), M + 60: b(3)}})
    ]
    # ...then it is gone; the zone stays for its other bucket.
    assert live.due(M + LONGEST_WINDOW_MIN + 1, 10) == [(ZONE_A, {"air": {M + 60: b(3)}})]


def test_a_zone_whose_buckets_all_left_is_forgotten_after_its_last_publish() -> None:
    live = LiveBuckets()
    live.put(4, ZONE_A, "thermal", M, b(1))
    settled(live, M)
    assert zones(live.due(M + LONGEST_WINDOW_MIN, 10)) == [ZONE_A]
    assert live.due(M + LONGEST_WINDOW_MIN + 1, 10) == []
    assert live.cache == {4: {}}


def test_a_late_bucket_already_outside_every_window_is_published_once() -> None:
    live = settled(LiveBuckets(), M)
    live.put(0, ZONE_A, "thermal", M - LONGEST_WINDOW_MIN - 2, b(1))
    assert live.due(M, 10) == [(ZONE_A, {"thermal": {M - LONGEST_WINDOW_MIN - 2: b(1)}})]
    assert live.due(M + 1, 10) == []


def test_a_flush_takes_at_most_limit_zones_and_the_rest_stay_due() -> None:
    live = LiveBuckets()
    names = [f"acme|hq|z{n:02d}" for n in range(7)]
    for n, zone in enumerate(names):
        live.put(n % 2, zone, "thermal", M, b(n))
    first = zones(live.due(M, 3))
    second = zones(live.due(M, 3))
    third = zones(live.due(M, 3))
    assert [len(first), len(second), len(third)] == [3, 3, 1]
    assert sorted(first + second + third) == names
    assert live.due(M, 3) == []


def test_a_new_minute_spreads_over_flushes_too() -> None:
    live = LiveBuckets()
    names = [f"acme|hq|z{n:02d}" for n in range(5)]
    for zone in names:
        live.put(0, zone, "thermal", M, b(1))
    settled(live, M)
    published = [zones(live.due(M + 1, 2)) for _ in range(3)]
    assert [len(p) for p in published] == [2, 2, 1]
    assert sorted(zone for flush in published for zone in flush) == names


def test_a_zone_left_over_is_published_by_the_next_flush_even_if_others_change_again() -> None:
    """The rest stay dirty *for the next flush*: busy zones must not starve quiet ones."""
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M, b(1))
    live.put(0, ZONE_B, "thermal", M, b(1))
    live.put(0, ZONE_C, "thermal", M, b(1))
    assert zones(live.due(M, 2)) == [ZONE_A, ZONE_B]
    # Votes keep arriving for A and B between flushes.
    live.put(0, ZONE_A, "thermal", M, b(2))
    live.put(0, ZONE_B, "thermal", M, b(2))
    assert ZONE_C in zones(live.due(M, 2))


def test_dropping_a_partition_forgets_its_zones_and_their_due_publishes() -> None:
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M, b(1))
    live.put(1, ZONE_B, "thermal", M, b(1))
    live.put(1, ZONE_C, "air", M, b(1))
    live.drop_partition(1)
    assert live.partitions() == {0}
    assert zones(live.due(M, 10)) == [ZONE_A]
    # Nor does a later minute bring them back.
    assert zones(live.due(M + 1, 10)) == [ZONE_A]


def test_dropping_a_partition_forgets_the_window_sums_of_its_zones() -> None:
    live = LiveBuckets()
    for partition, zone in ((0, ZONE_A), (1, ZONE_B), (1, ZONE_C)):
        live.put(partition, zone, "thermal", M - 3, b(1))
        live.put(partition, zone, "thermal", M, b(2))
    for zone, kinds in live.due(M, 10):
        for kind, buckets in kinds.items():
            live.windows.of(zone, kind, buckets, M)
    assert set(live.windows.pasts) == {ZONE_A, ZONE_B, ZONE_C}
    live.drop_partition(1)
    assert set(live.windows.pasts) == {ZONE_A}


def test_dropping_a_partition_not_held_changes_nothing() -> None:
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M, b(1))
    live.drop_partition(7)
    assert zones(live.due(M, 10)) == [ZONE_A]


def test_a_publish_is_a_snapshot_not_a_view_of_the_cache() -> None:
    live = LiveBuckets()
    live.put(0, ZONE_A, "thermal", M, b(1))
    [(_zone, kinds)] = live.due(M, 10)
    live.put(0, ZONE_A, "thermal", M + 1, b(2))
    assert kinds == {"thermal": {M: b(1)}}


puts = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=2),  # partition
        st.integers(min_value=0, max_value=5),  # zone
        st.sampled_from(["thermal", "air"]),
        st.integers(min_value=-70, max_value=0),  # minute, relative to now
    ),
    max_size=30,
)


@settings(max_examples=200)
@given(puts, st.integers(min_value=1, max_value=4), st.integers(min_value=0, max_value=3))
def test_flushes_publish_each_due_zone_once_with_its_live_buckets(
    changes: list[tuple[int, int, str, int]], limit: int, later: int
) -> None:
    live = LiveBuckets()
    zone_partition: dict[str, int] = {}
    for partition, zone_n, kind, minute in changes:
        zone = f"acme|hq|z{zone_n}"
        # A zone lives on one partition (votes.raw is keyed by zone).
        partition = zone_partition.setdefault(zone, partition)
        live.put(partition, zone, kind, M + minute, b(minute))
    now = M + later
    published: list[str] = []
    for _flush in range(len(zone_partition) + 1):
        batch = live.due(now, limit)
        assert len(batch) <= limit
        published += zones(batch)
        for _zone, kinds in batch:
            assert kinds and all(kinds.values())
    assert sorted(published) == sorted(zone_partition)
    # Afterwards the cache holds only what some window still shows.
    for zone_map in live.cache.values():
        for kinds in zone_map.values():
            for buckets in kinds.values():
                assert buckets
                assert all(m > now - LONGEST_WINDOW_MIN for m in buckets)
