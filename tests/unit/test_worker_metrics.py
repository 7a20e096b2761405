"""The worker's /metrics text: lag from progress and highwaters, the stage's counters,
dead letters by reason, and the ingest→publish histogram."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from sbp.metrics.consumer_lag import partition_lag, unfinished_from
from streams.worker_metrics import WorkerMetrics, WorkerSnapshot, lag_of


def samples(text: bytes) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text.decode())
        for s in family.samples
    }


def lag_key(partition: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"group": "sbp-worker", "partition": str(partition), "topic": "votes.raw"}
    return "sbp_consumer_lag_records", tuple(sorted(labels.items()))


def test_partition_lag_is_the_records_at_or_past_the_next_offset() -> None:
    assert partition_lag(120, 100) == 20
    assert partition_lag(100, 100) == 0
    # A highwater from an older fetch never makes the lag negative.
    assert partition_lag(99, 100) == 0
    assert partition_lag(None, 100) is None
    assert partition_lag(120, None) is None
    # librdkafka's "no offset yet" is -1001.
    assert partition_lag(-1001, 5) is None
    assert partition_lag(10, -1001) is None


def test_a_batch_in_flight_counts_from_its_first_offset_until_committed() -> None:
    positions: dict[int, int | None] = {0: 150, 1: 40, 2: None}
    assert unfinished_from({0: 100}, positions) == {0: 100, 1: 40, 2: None}


def test_lag_of_skips_partitions_whose_highwater_is_unknown() -> None:
    highwaters = {0: 500, 1: None}
    assert lag_of({0: 480, 1: 7, 2: None}, highwaters.get) == {0: 20}


async def test_a_scrape_exports_the_snapshot_taken_at_that_scrape() -> None:
    current = WorkerSnapshot(
        lag={3: 42, 7: 0},
        held=2,
        stage={
            "first": 10,
            "replay": 2,
            "duplicate": 1,
            "not_live": 1,
            "assigned": 24,
            "revoked": 12,
            "gaps_repaired": 1,
            "skipped_skip": 5,
            "timer_errors_publishing": 1,
        },
        dead_letters={"undecodable": 3},
        published=9,
    )
    metrics = WorkerMetrics(lambda: current)
    metrics.observe_latencies([0.4, 1.2, -0.01])
    got = samples(await metrics.render())

    worker = (("group", "sbp-worker"),)
    assert got[lag_key(3)] == 42
    assert got[lag_key(7)] == 0
    assert got[("sbp_consumer_partitions_held", worker)] == 2
    assert got[("sbp_consumer_partitions_assigned_total", worker)] == 24
    assert got[("sbp_consumer_partitions_revoked_total", worker)] == 12
    assert got[("sbp_vote_stage_votes_total", (("outcome", "replay"),))] == 2
    assert got[("sbp_vote_stage_votes_total", (("outcome", "first"),))] == 10
    # A vote too old for the windows is also first or replay: a counter of its own.
    assert ("sbp_vote_stage_votes_total", (("outcome", "not_live"),)) not in got
    assert got[("sbp_vote_stage_votes_not_live_total", ())] == 1
    assert got[("sbp_vote_stage_gaps_repaired_total", ())] == 1
    assert got[("sbp_vote_stage_records_skipped_total", (("reason", "below_progress"),))] == 5
    assert got[("sbp_dlq_records_total", (*worker, ("reason", "undecodable")))] == 3
    # Every other reason is there at 0, so its first letter is an increase (alerts).
    assert got[("sbp_dlq_records_total", (*worker, ("reason", "wrong_key")))] == 0
    assert got[("sbp_dlq_records_total", (*worker, ("reason", "not_avro_framed")))] == 0
    assert got[("sbp_worker_timer_errors_total", (("timer", "publishing"),))] == 1
    assert got[("sbp_live_snapshots_published_total", ())] == 9
    # Three latencies, one clamped to 0 (clocks a little apart): two within 1 s.
    assert got[("sbp_ingest_to_publish_seconds_count", ())] == 3
    assert got[("sbp_ingest_to_publish_seconds_bucket", (("le", "1.0"),))] == 2

    # The next scrape reads the stage again.
    current = WorkerSnapshot(lag={3: 0}, held=1)
    later = samples(await metrics.render())
    assert later[lag_key(3)] == 0
    # A partition no longer held has no lag series (not a stale figure).
    assert lag_key(7) not in later
