"""The vote state's keys, bucket updates (bounded, idempotent by offset) and expiry."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.tables.comfort_buckets import VOTER_KEY_CHARS
from streams.tables.vote_state import (
    VOTER_CAP,
    BucketUpdate,
    bucket_expiry,
    bucket_state_key,
    decode,
    dedup_entry,
    dedup_expiry,
    dedup_state_key,
    empty_bucket,
    encode,
    expired_keys,
    is_live_minute,
    is_replay,
    progress_key,
    split_bucket_state_key,
)

NOW_S = 1_773_144_000.0  # 2026-03-10T12:00:00Z
FAUST_OFFSET_KEY = b"__faust\x00offset__"


def user_ref(n: int) -> str:
    """A userRef shaped like the real ones: 64 hex characters."""
    return hashlib.sha256(f"user-{n}".encode()).hexdigest()


def vote(
    user: str = "a" * 64,
    value: int = 0,
    preference: str | None = None,
    remote: bool | None = None,
) -> dict[str, Any]:
    return {"userRef": user, "value": value, "preference": preference, "remote": remote}


def expiring(x: float) -> bytes:
    return orjson.dumps({"o": 1, "x": x})


# -- keys and values ------------------------------------------------------------


def test_dedup_key_is_prefixed_tenant_and_vote_uuid() -> None:
    assert dedup_state_key("acme", "0c3f5a8e-1b2d") == b"d|acme|0c3f5a8e-1b2d"


def test_bucket_key_and_its_split() -> None:
    key = bucket_state_key("acme|hq|3F-East", "thermal", 29_552_400)
    assert key == b"b|acme|hq|3F-East|thermal|29552400"
    assert split_bucket_state_key(key) == ("acme|hq|3F-East", "thermal", 29_552_400)


def test_progress_key_names_the_partition() -> None:
    assert progress_key(0) == b"o|0"
    assert progress_key(11) == b"o|11"


def test_values_round_trip_through_json_bytes() -> None:
    value = {"o": 7, "x": 1_773_749_520}
    raw = encode(value)
    assert orjson.loads(raw) == value
    assert decode(raw) == value
    assert decode(None) is None


def test_replay_means_the_entry_names_this_very_offset() -> None:
    entry = dedup_entry(41, 1_000)
    assert entry == {"o": 41, "x": 1_000}
    assert is_replay(entry, 41)
    assert not is_replay(entry, 42)
    assert not is_replay(entry, 40)
    assert not is_replay({"x": 1_000}, 41)


# -- expiry arithmetic -------------------------------------------------------------


def test_dedup_expiry_is_whole_seconds_after_client_time() -> None:
    assert dedup_expiry(1_000.9, 60) == 1_060
    assert dedup_expiry(1_000.0, 0) == 1_000


def test_bucket_expiry_counts_from_the_start_of_its_minute() -> None:
    assert bucket_expiry(10, 300) == 900
    assert bucket_expiry(0, 65 * 60) == 3_900


def test_a_minute_is_live_until_its_bucket_expires() -> None:
    minute, ttl = 100, 600  # expires at 6_600
    assert is_live_minute(minute, 6_599.999, ttl)
    assert not is_live_minute(minute, 6_600.0, ttl)
    assert not is_live_minute(minute, 6_601.0, ttl)


# -- bucket updates -------------------------------------------------------------


def test_a_new_bucket_starts_empty_below_every_offset() -> None:
    update = BucketUpdate.start(None, 9_999)
    assert update.value == {"v": {}, "p": {}, "u": [], "uo": 0, "r": 0, "h": -1, "x": 9_999}
    assert update.value == empty_bucket(9_999)
    assert update.add(0, vote())
    assert update.value["h"] == 0


def test_add_counts_value_preference_voter_and_remote() -> None:
    update = BucketUpdate.start(None, 9_999)
    assert update.add(5, vote(user="b" * 64, value=-2, preference="warmer", remote=True))
    assert update.add(9, vote(user="c" * 64, value=-2))
    assert update.add(12, vote(user="b" * 64, value=1, preference="cooler"))
    assert update.value == {
        "v": {"-2": 2, "1": 1},
        "p": {"warmer": 1, "cooler": 1},
        "u": ["b" * VOTER_KEY_CHARS, "c" * VOTER_KEY_CHARS],
        "uo": 0,
        "r": 1,
        "h": 12,
        "x": 9_999,
    }
    assert (update.applied, update.already) == (3, 0)


@pytest.mark.parametrize("offset", [0, 7, 10])
def test_an_offset_at_or_below_the_high_water_is_not_applied_again(offset: int) -> None:
    stored = {"v": {"0": 3}, "p": {}, "u": ["u" * 16], "uo": 0, "r": 0, "h": 10, "x": 9_999}
    update = BucketUpdate.start(stored, 1)
    assert not update.add(offset, vote(value=3, user="z" * 64))
    assert update.value == stored
    assert (update.applied, update.already) == (0, 1)


def test_an_offset_above_the_high_water_is_applied() -> None:
    stored = {"v": {"0": 3}, "p": {}, "u": ["u" * 16], "uo": 0, "r": 0, "h": 10, "x": 9_999}
    update = BucketUpdate.start(stored, 1)
    assert update.add(11, vote(value=3, user="z" * 64))
    assert update.value["v"] == {"0": 3, "3": 1}
    assert update.value["h"] == 11
    # A stored bucket keeps its own expiry, whatever the caller proposes.
    assert update.value["x"] == 9_999


def test_updating_never_mutates_the_stored_bucket() -> None:
    stored = {"v": {"0": 3}, "p": {"warmer": 1}, "u": ["u" * 16], "uo": 0, "r": 0, "h": 10, "x": 9}
    before = orjson.dumps(stored)
    update = BucketUpdate.start(stored, 1)
    update.add(11, vote(value=0, user="w" * 64, preference="warmer", remote=True))
    assert orjson.dumps(stored) == before


def test_voters_are_kept_by_a_prefix_of_their_ref() -> None:
    update = BucketUpdate.start(None, 1)
    update.add(1, vote(user="0123456789abcdef" + "1" * 48))
    update.add(2, vote(user="0123456789abcdef" + "2" * 48))  # same prefix: same voter
    assert update.value["u"] == ["0123456789abcdef"]
    assert update.value["uo"] == 0


def test_voters_past_the_cap_are_not_listed_but_counted_in_uo() -> None:
    update = BucketUpdate.start(None, 1)
    for n in range(VOTER_CAP + 3):
        update.add(n, vote(user=user_ref(n)))
    assert len(update.value["u"]) == VOTER_CAP
    assert update.value["u"] == [user_ref(n)[:VOTER_KEY_CHARS] for n in range(VOTER_CAP)]
    assert update.value["uo"] == 3
    # A listed voter voting again is already known: no overflow.
    update.add(VOTER_CAP + 3, vote(user=user_ref(0)))
    assert update.value["uo"] == 3
    assert sum(update.value["v"].values()) == VOTER_CAP + 4


def test_a_voter_past_the_cap_adds_to_uo_with_each_vote() -> None:
    # The bucket does not remember voters it did not list, so `uo` counts their
    # votes: it is an upper bound on the voters past the cap, not their number.
    update = BucketUpdate.start(None, 1)
    for n in range(VOTER_CAP):
        update.add(n, vote(user=user_ref(n)))
    extra = user_ref(VOTER_CAP)
    update.add(VOTER_CAP, vote(user=extra))
    update.add(VOTER_CAP + 1, vote(user=extra))
    assert update.value["uo"] == 2


def test_a_bucket_stays_small_however_many_votes_hit_it() -> None:
    """100k votes from 10k voters: the encoded bucket is a few KB and stops growing."""
    voters = [user_ref(n) for n in range(10_000)]
    update = BucketUpdate.start(None, 1_773_147_900)
    sizes: dict[int, int] = {}
    for offset in range(100_000):
        update.add(offset, vote(user=voters[offset % 10_000], value=offset % 7 - 3))
        if offset + 1 in (10_000, 100_000):
            sizes[offset + 1] = len(encode(update.value))
    bucket = update.value
    assert sum(bucket["v"].values()) == 100_000
    assert bucket["u"] == [ref[:VOTER_KEY_CHARS] for ref in voters[:VOTER_CAP]]
    # Every vote by one of the 10_000 - VOTER_CAP unlisted voters: 10 rounds of them.
    assert bucket["uo"] == 10 * (10_000 - VOTER_CAP)
    # The voter list dominates: each listed voter costs its prefix, two quotes and a comma.
    voter_list_bytes = VOTER_CAP * (VOTER_KEY_CHARS + 3)
    assert sizes[100_000] < voter_list_bytes + 300
    assert sizes[100_000] < 12_000  # far below the 1 MB a changelog record may hold
    # Ten times the votes adds only digits to the counters.
    assert sizes[100_000] - sizes[10_000] < 30


votes_at = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=60),
        st.integers(min_value=0, max_value=VOTER_CAP + 40),
        st.integers(min_value=-3, max_value=3),
    ),
    max_size=120,
)


@given(votes_at)
def test_a_bucket_counts_each_offset_once_and_lists_voters_up_to_the_cap(
    adds: list[tuple[int, int, int]],
) -> None:
    update = BucketUpdate.start(None, 1)
    applied_offsets = []
    for offset, voter, value in adds:
        if update.add(offset, vote(user=user_ref(voter), value=value)):
            applied_offsets.append(offset)
    bucket = update.value
    # Applied offsets strictly rise: nothing at or below the high water counts again.
    assert applied_offsets == sorted(set(applied_offsets))
    assert bucket["h"] == (applied_offsets[-1] if applied_offsets else -1)
    assert sum(bucket["v"].values()) == len(applied_offsets) == update.applied
    assert update.applied + update.already == len(adds)
    assert len(bucket["u"]) == len(set(bucket["u"])) <= VOTER_CAP
    # Re-adding everything to the stored result changes nothing.
    again = BucketUpdate.start(decode(encode(bucket)), 1)
    for offset, voter, value in adds:
        again.add(offset, vote(user=user_ref(voter), value=value))
    assert again.value == bucket
    assert again.applied == 0


# -- expired_keys ---------------------------------------------------------------


def test_expired_dedup_entries_and_buckets_go() -> None:
    rows = [
        (b"d|acme|old", expiring(NOW_S - 1)),
        (b"d|acme|due", expiring(NOW_S)),
        (b"d|acme|fresh", expiring(NOW_S + 1)),
        (b"b|acme|hq|z|thermal|1", expiring(NOW_S - 3600)),
        (b"b|acme|hq|z|thermal|2", expiring(NOW_S + 0.5)),
    ]
    assert expired_keys(rows, NOW_S) == [
        b"d|acme|old",
        b"d|acme|due",
        b"b|acme|hq|z|thermal|1",
    ]


def test_progress_keys_never_expire() -> None:
    rows = [
        (b"o|0", b'{"o":12}'),
        # Even a progress value that happens to carry an old expiry stays.
        (b"o|1", expiring(0)),
    ]
    assert expired_keys(rows, NOW_S) == []


@pytest.mark.parametrize("value", [42, b"42", b"not json at all"])
def test_faust_offset_key_is_left_alone(value: Any) -> None:
    rows: list[tuple[bytes, Any]] = [
        (FAUST_OFFSET_KEY, value),
        (b"d|acme|old", expiring(0)),
    ]
    assert expired_keys(rows, NOW_S) == [b"d|acme|old"]


def test_keys_of_other_shapes_are_left_alone() -> None:
    rows = [
        (b"x|acme|old", expiring(0)),
        (b"dedup-acme", expiring(0)),
        (b"bucket", expiring(0)),
        (b"", expiring(0)),
    ]
    assert expired_keys(rows, NOW_S) == []


def test_a_value_without_expiry_is_kept() -> None:
    assert expired_keys([(b"d|acme|v", b'{"o":3}')], NOW_S) == []


key_kinds = st.sampled_from(["d|", "b|", "o|", "__faust\x00offset__", "z|", "c|"])


@given(
    st.lists(
        st.tuples(key_kinds, st.integers(min_value=0, max_value=10_000), st.booleans()),
        max_size=40,
    ),
    st.integers(min_value=0, max_value=10_000),
)
def test_only_expired_dedup_and_bucket_keys_are_ever_returned(
    spec: list[tuple[str, int, bool]], now: int
) -> None:
    rows = [
        ((prefix + f"k{n}").encode(), orjson.dumps({"x": x} if has_x else {"o": n}))
        for n, (prefix, x, has_x) in enumerate(spec)
    ]
    expected = [
        key
        for (key, _raw), (prefix, x, has_x) in zip(rows, spec, strict=True)
        if prefix in ("d|", "b|") and has_x and x <= now
    ]
    assert expired_keys(rows, float(now)) == expected


def test_taking_a_fresh_bucket_updates_it_in_place_and_counts_the_same() -> None:
    raw = orjson.dumps({"v": {"0": 3}, "p": {}, "u": ["u" * 16], "uo": 0, "r": 0, "h": 10, "x": 9})
    fresh, copy = decode(raw), decode(raw)
    taken, started = BucketUpdate.take(fresh, 1), BucketUpdate.start(copy, 1)
    for update in (taken, started):
        update.add(11, vote(value=0, user="w" * 64, preference="warmer", remote=True))
    assert taken.value is fresh
    assert taken.value == started.value
    assert BucketUpdate.take(None, 5).value == BucketUpdate.start(None, 5).value
