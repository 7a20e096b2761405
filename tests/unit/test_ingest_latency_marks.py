"""Where ingest→publish latency starts: each vote newly applied to a live bucket leaves its
`receivedAt` with its zone until the zone is published (vote_batch + live_buckets)."""

from __future__ import annotations

from datetime import timedelta

from streams.tables.live_buckets import WAITING_PER_ZONE, LiveBuckets
from tests.unit.test_vote_batch import (
    NOW,
    NOW_MINUTE,
    UUID_A,
    UUID_B,
    Store,
    bucket,
    bucket_key,
    item,
    vote,
)

ZONE = "acme|hq|3F-East"


def test_each_vote_applied_to_a_live_bucket_marks_its_receipt_once() -> None:
    first = NOW - timedelta(seconds=3)
    second = NOW - timedelta(seconds=1)
    plan = Store().plan(
        [
            item(1, vote(UUID_A, received_at=first)),
            item(2, vote(UUID_B, received_at=second)),
            # A duplicate in the same batch changes no bucket: no mark.
            item(3, vote(UUID_A, received_at=NOW)),
        ]
    )
    assert plan.live_received == {ZONE: [first.timestamp(), second.timestamp()]}


def test_a_replayed_vote_the_bucket_already_holds_marks_nothing() -> None:
    key = bucket_key(NOW_MINUTE - 1)
    plan = Store({key: bucket(h=20, v={"0": 4})}).plan([item(17, vote())])
    assert plan.emits  # emitted again for the idempotent consumers ...
    assert plan.live_received == {}  # ... but no window changed, so nothing is published


def test_a_vote_too_old_for_the_live_windows_marks_nothing() -> None:
    old = vote(client_ts=NOW - timedelta(hours=3))
    assert Store().plan([item(1, old)]).live_received == {}


def test_marks_wait_for_the_zones_publish_and_are_taken_once() -> None:
    live = LiveBuckets()
    live.received(ZONE, [1.0, 2.0])
    live.received(ZONE, [3.0])
    assert live.take_waiting(ZONE) == [1.0, 2.0, 3.0]
    assert live.take_waiting(ZONE) == []


def test_marks_are_bounded_per_zone_keeping_the_oldest() -> None:
    live = LiveBuckets()
    live.received(ZONE, [float(i) for i in range(WAITING_PER_ZONE + 5)])
    live.received(ZONE, [-1.0])
    waiting = live.take_waiting(ZONE)
    assert len(waiting) == WAITING_PER_ZONE
    assert waiting[0] == 0.0 and -1.0 not in waiting


def test_a_revoked_partition_or_deleted_zone_forgets_its_marks() -> None:
    live = LiveBuckets()
    live.put(4, ZONE, "thermal", NOW_MINUTE, bucket(h=1))
    live.received(ZONE, [1.0])
    live.drop_partition(4)
    assert live.take_waiting(ZONE) == []
    live.received(ZONE, [1.0])
    live.drop_zone(ZONE)
    assert live.take_waiting(ZONE) == []
