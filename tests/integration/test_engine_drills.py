"""Drills of the vote engine on the real services: a hot bucket, a broker restart, a
replay storm (offsets reset to earliest), and state expiry with tombstones."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient

from devstack import kafka, workers
from devstack.python_services import SINK, WORKER
from devstack.raw_votes import RawVoteProducer, random_raw_votes, raw_vote
from sbp.settings import Settings
from streams.tables.comfort_buckets import epoch_minute
from streams.tables.vote_state import bucket_state_key, dedup_state_key
from streams.topics import PG_SINK_GROUP, VOTE_STATE_CHANGELOG, WORKER_APP_ID
from tests.integration.conftest import Tenant
from tests.integration.drills import SteadyLoad, assert_exact
from tests.integration.observe import (
    end_offsets,
    vote_count,
    wait_for,
    wait_window,
    worker_stats,
)
from tests.integration.votes import vote


def _changelog_records(settings: Settings, partition: int, start: int) -> list[Any]:
    """Every record of one state-changelog partition from `start` to its current end."""
    end = end_offsets(settings, VOTE_STATE_CHANGELOG.name)[partition]
    consumer = Consumer(
        {
            **settings.kafka_config("admin"),
            "group.id": "sbp-tests-changelog",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(VOTE_STATE_CHANGELOG.name, partition, start)])
    records: list[Any] = []
    try:
        while not records or records[-1].offset() < end - 1:
            batch = consumer.consume(5000, 5.0)
            if not batch:
                break
            records.extend(m for m in batch if m.error() is None)
    finally:
        consumer.close()
    return records


def _grown_partition(before: dict[int, int], after: dict[int, int]) -> int:
    grown = [p for p in after if after[p] > before.get(p, 0)]
    assert len(grown) == 1, f"expected one zone's partition to grow, got {grown}"
    return grown[0]


def test_a_hot_bucket_stays_small(tenant: Tenant) -> None:
    """100,000 votes for one zone, kind and minute: nothing crashes, the bucket's stored
    size does not grow with its votes, and the changelog costs a few bytes per vote."""
    settings = tenant.settings
    votes_n = 100_000
    workers.scale(settings, 1)
    pid = WORKER.process(settings).pid()
    minute_start = datetime.now(UTC).replace(second=0, microsecond=0)
    votes = random_raw_votes(
        tenant.tenant_id, "b1", ("z1",), votes_n, seed=7, now=minute_start, spread_s=0
    )
    for v in votes:
        v["kind"], v["value"] = "thermal", v["value"] if v["kind"] == "thermal" else 1
    raw_before = end_offsets(settings, "votes.raw")
    log_before = end_offsets(settings, VOTE_STATE_CHANGELOG.name)
    with RawVoteProducer(settings) as producer:
        producer.produce(votes)
    partition = _grown_partition(raw_before, end_offsets(settings, "votes.raw"))

    stats = wait_window(settings, tenant.tenant_id, "z1", "thermal", "60m", votes_n, timeout=300)
    assert sum(int(c) for c in stats["distribution"].values()) == votes_n
    assert WORKER.process(settings).pid() == pid, "the worker restarted during the drill"

    records = _changelog_records(settings, partition, log_before[partition])
    key = bucket_state_key(
        f"{tenant.tenant_id}|b1|z1", "thermal", int(minute_start.timestamp()) // 60
    )
    bucket_records = [r for r in records if r.key() == key]
    assert bucket_records, "the hot bucket was never written to the changelog"
    stored = bucket_records[-1].value()
    per_vote = sum(len(r.key()) + len(r.value() or b"") for r in records) / votes_n
    bucket = orjson.loads(stored)
    print(
        f"\nhot bucket: {votes_n} votes, {len(bucket_records)} bucket writes, stored bucket "
        f"{len(stored)} bytes, changelog {per_vote:.0f} bytes per vote"
    )
    assert sum(bucket["v"].values()) == votes_n
    # Counts and a voter set capped in size: no voteUuid list.
    assert len(stored) < 16_000
    # A dedup entry per vote (about 80 bytes) plus a share of the bucket writes.
    assert per_vote < 200


def test_a_broker_restart_mid_run_loses_and_doubles_nothing(tenant: Tenant) -> None:
    settings = tenant.settings
    workers.scale(settings, 1)
    votes = random_raw_votes(
        tenant.tenant_id, "b1", tenant.zones, 20_000, seed=11, now=datetime.now(UTC), spread_s=900
    )
    load = SteadyLoad(settings, votes, 2_000).start()
    try:
        load.wait_sent(0.3)
        kafka.down(settings)
        time.sleep(3)  # the broker stays down a while; producers and consumers must wait
        assert load.sent < len(votes)
    finally:
        kafka.start(settings)
        kafka.wait_ready(settings)
    load.join()
    # The worker and the sink reconnect on their own, or are restarted as a supervisor would.
    workers.scale(settings, 1)
    SINK.up(settings)
    assert_exact(settings, tenant.tenant_id, tenant.building_id, tenant.zones, votes)


def _reset_to_earliest(settings: Settings, group: str, topic: str) -> None:
    """Commit offset 0 for every partition, once the group has no member left.

    A stopped worker's static membership outlives it by the session timeout;
    until then the broker refuses the reset per partition (UNKNOWN_MEMBER_ID)
    while the call itself succeeds, so each partition's answer is checked.
    """
    admin = AdminClient({**settings.kafka_config("admin")})
    partitions = [TopicPartition(topic, p, 0) for p in end_offsets(settings, topic)]

    def reset() -> bool | None:
        futures = admin.alter_consumer_group_offsets(
            [ConsumerGroupTopicPartitions(group, partitions)]
        )
        answers = [tp for f in futures.values() for tp in f.result().topic_partitions]
        return all(tp.error is None for tp in answers) or None

    wait_for(reset, 60, f"{group}'s offsets of {topic} reset to 0")


def test_a_replay_storm_changes_no_row_and_no_window(tenant: Tenant) -> None:
    """Both groups reset to the start of their topics: every vote is read again, and
    PostgreSQL and the windows stay exactly as they were."""
    settings = tenant.settings
    workers.scale(settings, 1)
    votes = random_raw_votes(
        tenant.tenant_id, "b1", tenant.zones, 5_000, seed=13, now=datetime.now(UTC), spread_s=900
    )
    with RawVoteProducer(settings) as producer:
        producer.produce(votes)
    assert_exact(settings, tenant.tenant_id, tenant.building_id, tenant.zones, votes)

    workers.stop_all(settings)
    SINK.down(settings)
    _reset_to_earliest(settings, WORKER_APP_ID, "votes.raw")
    _reset_to_earliest(settings, PG_SINK_GROUP, "votes.accepted")
    before = worker_stats(settings) if workers.running(settings) else {}
    assert before == {}
    workers.scale(settings, 1)
    SINK.up(settings)
    sink_url = f"http://{settings.host}:{settings.sink_web_port}/stats"
    accepted_total = sum(end_offsets(settings, "votes.accepted").values())
    # The sink re-read all of votes.accepted (every row already there) ...
    wait_for(
        lambda: httpx.get(sink_url, timeout=5).json()["records"] >= accepted_total,
        300,
        "the sink re-read votes.accepted",
    )
    # ... and the stage read votes.raw again, skipping what its own progress
    # already covered.
    wait_for(
        lambda: worker_stats(settings).get("skipped_skip", 0) >= 1 or None,
        120,
        "the stage reading votes.raw again",
    )
    stats = worker_stats(settings)
    assert stats.get("emitted", 0) == 0, stats
    assert_exact(settings, tenant.tenant_id, tenant.building_id, tenant.zones, votes)


def test_expired_state_is_tombstoned_and_a_late_resend_is_answered_by_policy(
    tenant: Tenant,
) -> None:
    """With short horizons (20 s for dedup entries, buckets 70 s after their minute
    starts), the sweep deletes both and writes tombstones to the changelog."""
    settings = tenant.settings
    workers.stop_all(settings)
    WORKER.up(settings, env={"SBP_DEDUP_TTL_S": "20", "SBP_LIVE_BUCKET_TTL_S": "70"})
    try:
        # Before the votes: their entries may expire (and be tombstoned) soon after.
        log_before = end_offsets(settings, VOTE_STATE_CHANGELOG.name)
        # A bucket lives 70 s from its minute's start here: post early in a minute, so
        # the votes are still live however long the restarted worker takes to start.
        wait_for(lambda: datetime.now(UTC).second < 10, 70, "the start of a minute")
        items = [vote("z1", 1, minutes_ago=0.0) for _ in range(5)]
        response = httpx.post(
            f"{tenant.gateway}/api/v1/votes/batch",
            json={"items": items},
            headers=tenant.headers(),
            timeout=30,
        )
        assert response.json()["counts"]["accepted"] == 5
        wait_window(settings, tenant.tenant_id, "z1", "thermal", "5m", 5, timeout=120)
        # This tenant's own entries, not just any: the worker also holds (and expires,
        # with these short horizons) the state earlier tests left behind.
        zone = f"{tenant.tenant_id}|b1|z1"
        own = {dedup_state_key(tenant.tenant_id, item["voteUuid"]) for item in items} | {
            bucket_state_key(
                zone, "thermal", epoch_minute(datetime.fromisoformat(item["clientTs"]))
            )
            for item in items
        }

        def tombstoned() -> set[bytes]:
            found: set[bytes] = set()
            for partition, start in log_before.items():
                if end_offsets(settings, VOTE_STATE_CHANGELOG.name)[partition] > start:
                    found |= {
                        r.key()
                        for r in _changelog_records(settings, partition, start)
                        if r.value() is None
                    }
            return found

        wait_for(
            lambda: own <= tombstoned(),
            150,
            "this tenant's dedup entries and bucket expired and tombstoned",
        )
        # A late re-send through the gateway is answered by its own policy: the
        # gateway's mark says it was received, so `duplicate`, and nothing changes.
        again = httpx.post(
            f"{tenant.gateway}/api/v1/votes/batch",
            json={"items": items},
            headers=tenant.headers(),
            timeout=30,
        )
        assert [r["status"] for r in again.json()["results"]] == ["duplicate"] * 5
        # Produced behind the gateway's back after expiry, it is stored once still
        # (ON CONFLICT) and, its minute having left the live horizon, counts in no
        # live window.
        resend = raw_vote(
            tenant.tenant_id,
            "b1",
            "z1",
            value=1,
            vote_uuid=items[0]["voteUuid"],
            client_ts=datetime.fromisoformat(items[0]["clientTs"]),
            received_at=datetime.now(UTC) - timedelta(seconds=1),
        )
        not_live_before = worker_stats(settings).get("not_live", 0)
        sink_url = f"http://{settings.host}:{settings.sink_web_port}/stats"
        present_before = httpx.get(sink_url, timeout=5).json()["replayed"]
        with RawVoteProducer(settings) as producer:
            producer.produce([resend])
        wait_for(
            lambda: worker_stats(settings).get("not_live", 0) > not_live_before,
            60,
            "the re-send judged",
        )
        wait_for(
            lambda: httpx.get(sink_url, timeout=5).json()["replayed"] > present_before,
            60,
            "the sink found the row already stored",
        )
        assert vote_count(settings, tenant.tenant_id) == 5
    finally:
        workers.stop_all(settings)
        workers.scale(settings, 1)
