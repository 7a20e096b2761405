"""The sink's /metrics: lag from the consumer's own figures (a batch counts until its commit),
counters by result and reason, and the DLQ depth the probe last read."""

from __future__ import annotations

import urllib.request

from confluent_kafka import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from sinks.timescale.sink_metrics import ConsumerLag, SinkMetrics
from sinks.timescale.sink_web import SinkStats, SinkWebServer
from streams.dlq_depth import DlqDepth, depths

OFFSET_INVALID = -1001


class ConsumerFigures:
    """What librdkafka answers locally: app positions and cached highwaters.

    A stand-in for the unit test only; tests/integration/test_metrics_drill.py reads
    the real consumer."""

    def __init__(self, positions: dict[int, int], highs: dict[int, int]) -> None:
        self.positions = positions
        self.highs = highs

    def position(self, tps: list[TopicPartition]) -> list[TopicPartition]:
        return [
            TopicPartition(tp.topic, tp.partition, self.positions.get(tp.partition, OFFSET_INVALID))
            for tp in tps
        ]

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        assert cached, "a scrape must never ask the broker"
        return OFFSET_INVALID, self.highs.get(tp.partition, OFFSET_INVALID)


def scrape(metrics: SinkMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def lag_key(partition: int) -> tuple[str, tuple[tuple[str, str], ...]]:
    labels = {"group": "sbp-pg-sink", "partition": str(partition), "topic": "votes.accepted"}
    return "sbp_consumer_lag_records", tuple(sorted(labels.items()))


def test_lag_counts_a_batch_waiting_on_postgres_until_it_is_committed() -> None:
    lag = ConsumerLag()
    consumer = ConsumerFigures(positions={0: 150, 1: 40}, highs={0: 160, 1: 40, 2: 9})
    lag.attach(consumer)

    def refreshed() -> dict[int, int]:
        lag.refresh()
        return lag.read()

    # Only the partitions the rebalance callbacks reported are read.
    assert refreshed() == {}
    lag.assigned({0: None, 1: None, 2: None})
    # Partition 2: nothing consumed yet and no committed offset: no figure.
    assert refreshed() == {0: 10, 1: 0}
    lag.batch_started({0: 100})
    assert refreshed() == {0: 60, 1: 0}
    # A scrape reads the last refresh, whatever happened since.
    lag.batch_finished()
    assert lag.read() == {0: 60, 1: 0}
    assert refreshed() == {0: 10, 1: 0}
    # The committed offset read at assignment stands in until the first record comes.
    lag.assigned({2: 4})
    assert refreshed() == {0: 10, 1: 0, 2: 5}
    lag.revoked([2])
    assert lag.read() == {0: 10, 1: 0}
    lag.detach()
    assert refreshed() == {}


def test_the_scrape_exports_counters_lag_and_dlq_depth() -> None:
    stats = SinkStats()
    stats.assigned([("votes.accepted", 0), ("votes.accepted", 1)])
    stats.revoked([("votes.accepted", 1)])
    stats.add(inserted=7, replayed=2, batches=3, records=9)
    stats.dead_lettered(["db_rejected", "db_rejected"])
    offsets = {0: (5, 12), 1: (0, 0)}
    depth = DlqDepth(lambda: offsets, every_s=60)
    depth.refresh()
    metrics = SinkMetrics(stats, depth)
    metrics.lag.attach(ConsumerFigures(positions={0: 30}, highs={0: 34}))
    metrics.lag.assigned({0: 12})
    metrics.lag.refresh()
    metrics.batch_seconds.observe(0.2)

    got = scrape(metrics)
    sink = (("group", "sbp-pg-sink"),)
    assert got[lag_key(0)] == 4
    assert got[("sbp_consumer_partitions_held", sink)] == 1
    assert got[("sbp_consumer_partitions_assigned_total", sink)] == 2
    assert got[("sbp_consumer_partitions_revoked_total", sink)] == 1
    assert got[("sbp_sink_rows_total", (("result", "inserted"),))] == 7
    assert got[("sbp_sink_rows_total", (("result", "replayed"),))] == 2
    assert got[("sbp_sink_batches_total", ())] == 3
    assert got[("sbp_dlq_records_total", (*sink, ("reason", "db_rejected")))] == 2
    # Every other reason is there at 0, so its first letter is an increase (alerts).
    assert got[("sbp_dlq_records_total", (*sink, ("reason", "unknown_tenant")))] == 0
    assert got[("sbp_sink_batch_duration_seconds_count", ())] == 1
    dlq_0 = ("sbp_dlq_depth_records", (("partition", "0"), ("topic", "votes.dlq")))
    assert got[dlq_0] == 7
    assert got[("sbp_sink_database_up", ())] == 0


def test_dlq_depth_keeps_its_last_figures_when_a_read_fails() -> None:
    answers: list[dict[int, tuple[int, int]] | None] = [{0: (0, 3)}, None, {0: (2, 4)}]

    def read() -> dict[int, tuple[int, int]]:
        answer = answers.pop(0)
        if answer is None:
            raise RuntimeError("broker unreachable")
        return answer

    depth = DlqDepth(read, every_s=60)
    figures = []
    for _ in range(3):
        depth.refresh()
        by_name = {family.name: family for family in depth.collect()}
        figures.append(
            {s.labels["partition"]: s.value for s in by_name["sbp_dlq_depth_records"].samples}
        )
    assert figures == [{"0": 3}, {"0": 3}, {"0": 2}]
    assert by_name["sbp_dlq_depth_read_errors"].samples[0].value == 1
    assert depths({0: (10, 4)}) == {0: 0}


def test_metrics_are_served_by_the_sinks_web_server() -> None:
    stats = SinkStats()
    metrics = SinkMetrics(stats)
    server = SinkWebServer("127.0.0.1", 0, stats, metrics.render)
    server.start()
    try:
        url = f"http://127.0.0.1:{server.port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            body = response.read().decode()
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    finally:
        server.stop()
    assert "sbp_sink_batches_total 0.0" in body
