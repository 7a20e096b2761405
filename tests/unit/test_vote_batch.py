"""One votes.raw batch planned against the stored state: emits, dead letters, state writes.

The property at the end is the point of the module: however a partition's
records are cut into batches, and wherever a crash makes them replay, the
buckets end the same and every vote is emitted.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.tables.vote_batch import Failure, Horizons, Item, Plan, plan_batch

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
NOW = datetime(2026, 3, 10, 12, 0, 0, tzinfo=UTC)
NOW_S = NOW.timestamp()
NOW_MINUTE = (NOW - EPOCH) // timedelta(minutes=1)
DEDUP_TTL_S = 7 * 24 * 3600 + 3720
LIVE_TTL_S = 65 * 60
HORIZONS = Horizons(dedup_ttl_s=DEDUP_TTL_S, live_bucket_ttl_s=LIVE_TTL_S)

TENANT = "acme"
BUILDING = "hq"
ZONE = "3F-East"
ZONE_KEY = b"acme|hq|3F-East"
UUID_A = "0c3f5a8e-1b2d-4e6f-8a9b-0c1d2e3f4a5b"
UUID_B = "7d1e0c44-3b0a-4f5e-9a77-21c4b5d6e7f8"
USER = "f" * 64


def vote(
    vote_uuid: str = UUID_A,
    *,
    tenant: str = TENANT,
    zone: str = ZONE,
    kind: str = "thermal",
    value: int = 0,
    user: str = USER,
    client_ts: datetime = NOW - timedelta(seconds=30),
    received_at: datetime = NOW,
    preference: str | None = None,
    remote: bool | None = None,
) -> dict[str, Any]:
    return {
        "tenantId": tenant,
        "voteUuid": vote_uuid,
        "buildingId": BUILDING,
        "zoneId": zone,
        "kind": kind,
        "value": value,
        "preference": preference,
        "userRef": user,
        "clientTs": client_ts,
        "receivedAt": received_at,
        "late": False,
        "remote": remote,
    }


def item(offset: int, v: dict[str, Any], key: bytes | None = None) -> Item:
    zone_key = f"{v['tenantId']}|{v['buildingId']}|{v['zoneId']}".encode()
    return Item(offset, zone_key if key is None else key, v)


def dedup_key(vote_uuid: str, tenant: str = TENANT) -> bytes:
    return f"d|{tenant}|{vote_uuid}".encode()


def bucket_key(minute: int, kind: str = "thermal", zone: str = ZONE) -> bytes:
    return f"b|{TENANT}|{BUILDING}|{zone}|{kind}|{minute}".encode()


def epoch_s(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(seconds=1)


class Store:
    """The partition's state as a dict, recording every lookup the plan makes."""

    def __init__(self, data: dict[bytes, Any] | None = None) -> None:
        self.data: dict[bytes, bytes] = {}
        for key, value in (data or {}).items():
            self.set(key, value)
        self.lookups: list[list[bytes]] = []

    def set(self, key: bytes, value: Any) -> None:
        self.data[key] = orjson.dumps(value)

    def value(self, key: bytes) -> Any:
        return orjson.loads(self.data[key])

    def get_many(self, keys: list[bytes]) -> list[bytes | None]:
        self.lookups.append(list(keys))
        return [self.data.get(k) for k in keys]

    def plan(self, items: list[Item], now_s: float = NOW_S) -> Plan:
        return plan_batch(items, self.get_many, now_s, HORIZONS)

    def apply(self, plan: Plan) -> None:
        self.data.update(plan.puts)


def decoded_puts(plan: Plan) -> dict[bytes, Any]:
    return {k: orjson.loads(v) for k, v in plan.puts.items()}


def bucket(
    h: int,
    minute: int = NOW_MINUTE - 1,
    v: dict[str, int] | None = None,
    u: list[str] | None = None,
) -> dict[str, Any]:
    return {
        "v": v or {},
        "p": {},
        "u": u or [],
        "uo": 0,
        "r": 0,
        "h": h,
        "x": minute * 60 + LIVE_TTL_S,
    }


# -- dedup ----------------------------------------------------------------------


def test_first_sighting_is_emitted_and_writes_its_dedup_entry() -> None:
    client_ts = NOW - timedelta(seconds=30)
    v = vote(client_ts=client_ts)
    plan = Store().plan([item(7, v)])
    assert plan.emits == [(7, v)]
    assert plan.failures == []
    assert decoded_puts(plan)[dedup_key(UUID_A)] == {
        "o": 7,
        "x": epoch_s(client_ts) + DEDUP_TTL_S,
    }
    assert plan.counts["first"] == 1


def test_dedup_expiry_follows_client_time_not_receipt() -> None:
    client_ts = NOW - timedelta(days=3, minutes=20, seconds=15)
    plan = Store().plan([item(0, vote(client_ts=client_ts))])
    entry = decoded_puts(plan)[dedup_key(UUID_A)]
    assert entry["x"] == epoch_s(NOW) - (3 * 86400 + 20 * 60 + 15) + DEDUP_TTL_S


def test_same_vote_later_in_the_batch_is_a_duplicate() -> None:
    first = vote(value=1)
    again = vote(value=1)
    plan = Store().plan([item(3, first), item(4, vote(UUID_B)), item(9, again)])
    assert [(o, v["voteUuid"]) for o, v in plan.emits] == [(3, UUID_A), (4, UUID_B)]
    assert decoded_puts(plan)[dedup_key(UUID_A)]["o"] == 3
    assert plan.counts["duplicate"] == 1
    # Counted in its bucket once.
    assert decoded_puts(plan)[bucket_key(NOW_MINUTE - 1)]["v"] == {"1": 1, "0": 1}


def test_same_vote_at_another_stored_offset_is_a_duplicate_and_writes_nothing() -> None:
    store = Store({dedup_key(UUID_A): {"o": 3, "x": epoch_s(NOW) + 100}})
    plan = store.plan([item(12, vote())])
    assert plan.emits == []
    assert plan.failures == []
    assert plan.puts == {}
    assert plan.buckets == {}
    assert plan.counts["duplicate"] == 1


def test_a_duplicate_is_dropped_even_when_the_stored_offset_is_later() -> None:
    store = Store({dedup_key(UUID_A): {"o": 30, "x": epoch_s(NOW) + 100}})
    assert store.plan([item(12, vote())]).emits == []


def test_a_replay_is_emitted_again_and_its_entry_rewritten() -> None:
    client_ts = NOW - timedelta(minutes=2)
    v = vote(client_ts=client_ts)
    entry = {"o": 12, "x": epoch_s(client_ts) + DEDUP_TTL_S}
    plan = Store({dedup_key(UUID_A): entry}).plan([item(12, v)])
    assert plan.emits == [(12, v)]
    assert decoded_puts(plan)[dedup_key(UUID_A)] == entry
    assert plan.counts["replay"] == 1
    assert plan.counts["first"] == 0


def test_dedup_is_per_tenant() -> None:
    mine = vote(UUID_A)
    theirs = vote(UUID_A, tenant="globex")
    plan = Store({dedup_key(UUID_A): {"o": 1, "x": 0}}).plan([item(5, mine), item(6, theirs)])
    assert plan.emits == [(6, theirs)]
    assert dedup_key(UUID_A, "globex") in plan.puts


def test_a_re_send_for_another_zone_of_the_partition_is_still_a_duplicate() -> None:
    plan = Store().plan([item(1, vote(zone="3F-East")), item(2, vote(zone="2F-West"))])
    assert [o for o, _v in plan.emits] == [1]
    assert bucket_key(NOW_MINUTE - 1, zone="2F-West") not in plan.puts


def test_each_dedup_key_is_looked_up_once_per_batch() -> None:
    store = Store()
    store.plan([item(1, vote(UUID_A)), item(2, vote(UUID_B)), item(3, vote(UUID_A))])
    assert store.lookups[0] == [dedup_key(UUID_A), dedup_key(UUID_B)]


# -- buckets --------------------------------------------------------------------


def test_a_first_vote_builds_its_bucket() -> None:
    client_ts = NOW - timedelta(minutes=4, seconds=10)  # minute NOW-5
    v = vote(value=-2, client_ts=client_ts, preference="warmer", remote=True, user="ab" * 32)
    plan = Store().plan([item(8, v)])
    key = bucket_key(NOW_MINUTE - 5)
    expected = {
        "v": {"-2": 1},
        "p": {"warmer": 1},
        "u": ["ab" * 8],
        "uo": 0,
        "r": 1,
        "h": 8,
        "x": (NOW_MINUTE - 5) * 60 + LIVE_TTL_S,
    }
    assert decoded_puts(plan)[key] == expected
    assert plan.buckets == {key: expected}
    assert plan.counts["bucket_applied"] == 1


def test_bucket_minute_is_clamped_to_receipt() -> None:
    received = NOW - timedelta(minutes=3)
    plan = Store().plan([item(0, vote(client_ts=NOW + timedelta(minutes=1), received_at=received))])
    assert list(plan.buckets) == [bucket_key(NOW_MINUTE - 3)]


def test_votes_of_one_kind_and_minute_share_a_bucket_written_once() -> None:
    store = Store()
    uuids = [f"00000000-0000-4000-8000-00000000000{n}" for n in range(5)]
    items = [item(10 + n, vote(u, value=n - 2, user=f"{n}" * 64)) for n, u in enumerate(uuids)]
    plan = store.plan(items)
    key = bucket_key(NOW_MINUTE - 1)
    bucket_puts = [k for k in plan.puts if k.startswith(b"b|")]
    assert bucket_puts == [key]
    assert decoded_puts(plan)[key]["v"] == {"-2": 1, "-1": 1, "0": 1, "1": 1, "2": 1}
    assert decoded_puts(plan)[key]["h"] == 14
    # The second lookup is the buckets', one key however many votes hit it.
    assert store.lookups[1] == [key]


def test_kinds_and_minutes_make_separate_buckets() -> None:
    plan = Store().plan(
        [
            item(1, vote(UUID_A, kind="thermal")),
            item(2, vote(UUID_B, kind="air", value=4)),
            item(3, vote("c" * 8, client_ts=NOW - timedelta(minutes=10))),
        ]
    )
    assert sorted(plan.buckets) == sorted(
        [
            bucket_key(NOW_MINUTE - 1, "thermal"),
            bucket_key(NOW_MINUTE - 1, "air"),
            bucket_key(NOW_MINUTE - 10, "thermal"),
        ]
    )


def test_a_vote_at_or_below_the_bucket_high_water_is_not_applied_again() -> None:
    # Its dedup entry was lost in a crash but its bucket was saved: emitted, not recounted.
    key = bucket_key(NOW_MINUTE - 1)
    stored = bucket(h=20, v={"0": 4}, u=["u" * 16])
    plan = Store({key: stored}).plan([item(17, vote(value=3)), item(20, vote(UUID_B, value=3))])
    assert [o for o, _v in plan.emits] == [17, 20]
    assert decoded_puts(plan)[key] == stored
    assert plan.counts["bucket_already"] == 2
    assert plan.counts["bucket_applied"] == 0


def test_a_replay_past_the_high_water_is_applied() -> None:
    # Its dedup entry was saved but its bucket write was lost.
    key = bucket_key(NOW_MINUTE - 1)
    store = Store(
        {
            key: bucket(h=20, v={"0": 4}),
            dedup_key(UUID_A): {"o": 21, "x": epoch_s(NOW) + 1000},
        }
    )
    plan = store.plan([item(21, vote(value=3))])
    assert plan.emits and plan.counts["replay"] == 1
    assert decoded_puts(plan)[key]["v"] == {"0": 4, "3": 1}
    assert decoded_puts(plan)[key]["h"] == 21


def test_every_touched_bucket_is_rewritten_even_when_nothing_changed() -> None:
    old = bucket_key(NOW_MINUTE - 1)
    new = bucket_key(NOW_MINUTE - 2)
    store = Store({old: bucket(h=50, v={"0": 1})})
    plan = store.plan(
        [
            item(40, vote(UUID_A)),  # already in `old`
            item(41, vote(UUID_B, client_ts=NOW - timedelta(seconds=90))),
        ]
    )
    assert set(k for k in plan.puts if k.startswith(b"b|")) == {old, new}
    assert decoded_puts(plan)[old] == bucket(h=50, v={"0": 1})
    assert set(plan.buckets) == {old, new}


@pytest.mark.parametrize(
    ("age_min", "live"),
    [
        (64, True),  # bucket expires one minute from now
        (65, False),  # bucket expiry is exactly now
        (66, False),
        (60 * 24 * 3, False),
    ],
)
def test_a_vote_too_old_for_live_windows_is_emitted_without_a_bucket(
    age_min: int, live: bool
) -> None:
    client_ts = NOW - timedelta(minutes=age_min)
    plan = Store().plan([item(3, vote(client_ts=client_ts))])
    assert [o for o, _v in plan.emits] == [3]
    assert dedup_key(UUID_A) in plan.puts
    if live:
        assert list(plan.buckets) == [bucket_key(NOW_MINUTE - age_min)]
        assert plan.counts["not_live"] == 0
    else:
        assert plan.buckets == {}
        assert [k for k in plan.puts if k.startswith(b"b|")] == []
        assert plan.counts["not_live"] == 1


def test_an_expired_stored_bucket_is_never_written_back() -> None:
    key = bucket_key(NOW_MINUTE - 70)
    store = Store({key: bucket(h=2, minute=NOW_MINUTE - 70)})
    plan = store.plan([item(9, vote(client_ts=NOW - timedelta(minutes=70)))])
    assert key not in plan.puts


# -- failures -------------------------------------------------------------------


def test_a_record_keyed_by_another_zone_fails_with_wrong_key() -> None:
    plan = Store().plan([item(4, vote(), key=b"acme|hq|2F-West"), Item(5, None, vote(UUID_B))])
    assert [(f.offset, f.code) for f in plan.failures] == [(4, "wrong_key"), (5, "wrong_key")]
    assert "acme|hq|3F-East" in plan.failures[0].message
    assert plan.emits == []
    assert plan.puts == {}


def test_a_wrong_key_record_does_not_claim_its_vote_uuid() -> None:
    plan = Store().plan([item(4, vote(), key=b"acme|hq|2F-West"), item(5, vote())])
    assert [o for o, _v in plan.emits] == [5]
    assert decoded_puts(plan)[dedup_key(UUID_A)]["o"] == 5


@pytest.mark.parametrize(
    "code",
    ["not_avro_framed", "undecodable", "unknown_schema_id", "invalid_schema", "invalid_value"],
)
def test_decode_and_migration_failures_pass_through_with_their_code(code: str) -> None:
    plan = Store().plan([Item(6, ZONE_KEY, None, code, f"because {code}")])
    assert plan.failures == [Failure(6, code, f"because {code}")]
    assert plan.emits == []
    assert plan.puts == {}


def test_failures_and_votes_keep_their_own_offsets() -> None:
    plan = Store().plan(
        [
            item(10, vote(UUID_A)),
            Item(11, ZONE_KEY, None, "undecodable", "bad bytes"),
            item(12, vote(UUID_B)),
            item(13, vote("d" * 8), key=b"elsewhere"),
        ]
    )
    assert [o for o, _v in plan.emits] == [10, 12]
    assert [(f.offset, f.code) for f in plan.failures] == [(11, "undecodable"), (13, "wrong_key")]


# -- exactly once, however batched and replayed --------------------------------

UUIDS = [f"{n:08x}-0000-4000-8000-000000000000" for n in range(6)]
ZONES = ["3F-East", "2F-West"]


@st.composite
def records(draw: st.DrawFn) -> list[Item]:
    """A partition's log: votes (some re-sent), a poison record now and then."""
    count = draw(st.integers(min_value=1, max_value=25))
    out = []
    for offset in range(count):
        if draw(st.integers(min_value=0, max_value=9)) == 0:
            out.append(Item(offset, ZONE_KEY, None, "undecodable", "poison"))
            continue
        v = vote(
            draw(st.sampled_from(UUIDS)),
            zone=draw(st.sampled_from(ZONES)),
            kind=draw(st.sampled_from(["thermal", "noise"])),
            value=draw(st.integers(min_value=1, max_value=3)),
            user=draw(st.sampled_from(["a", "b", "c"])) * 64,
            # Minutes 0..3 ago, or old enough to be no longer live.
            client_ts=NOW - timedelta(minutes=draw(st.sampled_from([0, 1, 3, 90]))),
        )
        out.append(item(offset, v))
    return out


def cuts(start: int, end: int) -> st.SearchStrategy[list[int]]:
    """Batch boundaries from `start` to `end`, cut anywhere in between."""
    if end - start < 2:
        return st.just([start, end])
    inner = st.sets(st.integers(min_value=start + 1, max_value=end - 1))
    return inner.map(lambda offsets: [start, *sorted(offsets), end])


def subset(values: list[Any]) -> st.SearchStrategy[list[Any]]:
    return st.lists(st.sampled_from(values), unique=True) if values else st.just([])


def run(store: Store, log: list[Item], bounds: list[int]) -> list[tuple[int, str]]:
    emitted = []
    for lo, hi in itertools.pairwise(bounds):
        plan = store.plan(log[lo:hi])
        store.apply(plan)
        emitted += [(o, v["voteUuid"]) for o, v in plan.emits]
    return emitted


def bucket_counts(store: Store) -> dict[bytes, dict[str, int]]:
    return {k: store.value(k)["v"] for k in store.data if k.startswith(b"b|")}


@settings(max_examples=300, deadline=None)
@given(records(), st.data())
def test_any_batching_with_a_crash_and_replay_counts_every_vote_once(
    log: list[Item], data: st.DataObject
) -> None:
    reference = Store()
    reference_emits = run(reference, log, [0, len(log)])

    crashed = Store()
    before = data.draw(cuts(0, len(log)))
    # Run whole batches up to the crash, then the crashing batch, of whose state
    # writes and emits only some reached Kafka.
    crash_at = data.draw(st.integers(min_value=0, max_value=len(before) - 2))
    emits = run(crashed, log, before[: crash_at + 1])
    lo, hi = before[crash_at], before[crash_at + 1]
    plan = crashed.plan(log[lo:hi])
    emits += data.draw(subset([(o, v["voteUuid"]) for o, v in plan.emits]))
    kept = data.draw(subset(sorted(plan.puts)))
    crashed.data.update({k: plan.puts[k] for k in kept})
    # Replay from a durable progress point at or before the crashing batch,
    # batched differently this time.
    resume = data.draw(st.sampled_from(before[: crash_at + 1]))
    emits += run(crashed, log, data.draw(cuts(resume, len(log))))

    assert bucket_counts(crashed) == bucket_counts(reference)
    assert {u for _o, u in emits} == {u for _o, u in reference_emits}
    # A vote is only ever emitted from the offset where it was first seen.
    assert set(emits) == set(reference_emits)
    # And the whole state, dedup entries and bucket high waters included, matches.
    assert {k: crashed.value(k) for k in crashed.data} == {
        k: reference.value(k) for k in reference.data
    }


def test_the_reference_run_counts_each_vote_uuid_once() -> None:
    log = [
        item(0, vote(UUIDS[0], value=1)),
        item(1, vote(UUIDS[1], value=2)),
        item(2, vote(UUIDS[0], value=3)),  # re-send
        item(3, vote(UUIDS[2], value=2, client_ts=NOW - timedelta(minutes=90))),  # not live
    ]
    store = Store()
    assert run(store, log, [0, 2, 4]) == [(0, UUIDS[0]), (1, UUIDS[1]), (3, UUIDS[2])]
    assert bucket_counts(store) == {bucket_key(NOW_MINUTE - 1): {"1": 1, "2": 1}}
