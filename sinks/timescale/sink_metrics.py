"""The PostgreSQL sink's Prometheus metrics, served at `/metrics` on its web port (sink_web.py).

A scrape runs in the web server's thread, never in the sink loop, and never
touches the consumer: it reads the counters under `SinkStats`' lock, the DLQ
depth the probe last read (streams/dlq_depth.py), and the lag figures the loop
last worked out (`ConsumerLag`). So the sink loop is never paused by a scrape,
and a scrape still answers while a batch waits out a PostgreSQL outage, which
is exactly when the lag matters.

The sink loop itself adds, per `consume()` (not per record), one lag refresh
(a position call and a cached watermark per held partition), and per batch one
histogram observation.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from confluent_kafka import TopicPartition
from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sbp.metrics.consumer_lag import partition_lag, unfinished_from
from sbp.metrics.dead_letters import dead_letter_family
from sinks.timescale.sink_web import SinkStats
from streams.dlq import SINK_REASONS
from streams.dlq_depth import DlqDepth
from streams.topics import PG_SINK_GROUP, VOTES_ACCEPTED

# One batch is up to 2,000 rows in one transaction per tenant; an outage holds it longer.
BATCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
ROWS = ("inserted", "replayed")


class ConsumerLag:
    """The sink consumer's lag per partition, worked out by the sink loop, read by scrapes.

    confluent-kafka serializes every call on a client handle: a scrape thread
    asking the consumer anything waits for `consume()` to return, and the loop
    calls it again at once, so such a scrape starved. The loop's own thread
    therefore refreshes the figures (`refresh`), after every `consume()` (at
    most every half second when idle, once per batch when busy) and on every
    retry while a batch waits out an outage; a scrape reads the last figures.

    The figures are local to librdkafka, no broker call: the high watermark
    cached from the last fetch of each partition (its background fetcher keeps
    fetching while a batch waits) and the application's position. The
    partitions are those the rebalance callbacks reported. A batch being
    written counts from its first offset until it is committed. Before a
    partition's first record the position is unknown, so the committed offset
    read once when it was assigned stands in for it.
    """

    def __init__(self, topic: str = VOTES_ACCEPTED.name) -> None:
        self._topic = topic
        self._consumer: Any = None
        self._in_flight: dict[int, int] = {}
        # Held partitions → the committed offset read at their assignment (None: none).
        self._held: dict[int, int | None] = {}
        self._lags: dict[int, int] = {}

    def attach(self, consumer: Any) -> None:
        self._consumer = consumer

    def detach(self) -> None:
        """Before the consumer closes: a refresh must never touch a closed handle."""
        self._consumer = None
        self._lags = {}

    def assigned(self, committed: Mapping[int, int | None]) -> None:
        self._held = {**self._held, **committed}

    def revoked(self, partitions: Iterable[int]) -> None:
        gone = set(partitions)
        self._held = {p: o for p, o in self._held.items() if p not in gone}
        self._lags = {p: n for p, n in self._lags.items() if p not in gone}

    def batch_started(self, first_offsets: Mapping[int, int]) -> None:
        self._in_flight = dict(first_offsets)

    def batch_finished(self) -> None:
        self._in_flight = {}

    def refresh(self) -> None:
        """Call on the thread that owns the consumer."""
        consumer, held = self._consumer, self._held
        if consumer is None or not held:
            self._lags = {}
            return
        tps = [TopicPartition(self._topic, p) for p in sorted(held)]
        positions = {
            tp.partition: tp.offset if tp.offset >= 0 else held.get(tp.partition)
            for tp in consumer.position(tps)
        }
        highs = {tp.partition: consumer.get_watermark_offsets(tp, cached=True)[1] for tp in tps}
        lags = {}
        for partition, next_offset in unfinished_from(self._in_flight, positions).items():
            lag = partition_lag(highs.get(partition), next_offset)
            if lag is not None:
                lags[partition] = lag
        self._lags = lags

    def read(self) -> dict[int, int]:
        """The figures of the last refresh (any thread)."""
        return self._lags


def families(
    counts: Mapping[str, int],
    dead_letters: Mapping[str, int],
    db_ok: bool,
    held: int,
    lag: Mapping[int, int],
) -> Iterator[Metric]:
    group, topic = PG_SINK_GROUP, VOTES_ACCEPTED.name
    lag_family = GaugeMetricFamily(
        "sbp_consumer_lag_records",
        "Records in the partition that the group has not finished with.",
        labels=["group", "topic", "partition"],
    )
    for partition, records in sorted(lag.items()):
        lag_family.add_metric([group, topic, str(partition)], records)
    yield lag_family
    for name, doc, value in (
        ("sbp_consumer_partitions_held", "Partitions this consumer holds.", held),
    ):
        gauge = GaugeMetricFamily(name, doc, labels=["group"])
        gauge.add_metric([group], value)
        yield gauge
    for name, doc, key in (
        ("sbp_consumer_partitions_assigned", "Partitions assigned by rebalances.", "assigned"),
        ("sbp_consumer_partitions_revoked", "Partitions revoked by rebalances.", "revoked"),
    ):
        counter = CounterMetricFamily(name, doc, labels=["group"])
        counter.add_metric([group], counts.get(f"partitions_{key}", 0))
        yield counter
    rows = CounterMetricFamily(
        "sbp_sink_rows",
        "Rows the sink wrote: inserted, or replayed (already stored: ON CONFLICT DO NOTHING).",
        labels=["result"],
    )
    for result in ROWS:
        rows.add_metric([result], counts.get(result, 0))
    yield rows
    yield CounterMetricFamily(
        "sbp_sink_batches", "Batches stored and committed.", value=counts.get("batches", 0)
    )
    yield CounterMetricFamily(
        "sbp_sink_records", "Records read in committed batches.", value=counts.get("records", 0)
    )
    yield CounterMetricFamily(
        "sbp_sink_retries",
        "Retries of a batch's write while PostgreSQL, the registry or the DLQ was unavailable.",
        value=counts.get("retries", 0),
    )
    yield GaugeMetricFamily(
        "sbp_sink_database_up",
        "1 while PostgreSQL answered the sink's last request.",
        value=1 if db_ok else 0,
    )
    yield dead_letter_family(group, SINK_REASONS, dead_letters)


class _SinkCollector(Collector):
    def __init__(self, stats: SinkStats, lag: ConsumerLag) -> None:
        self._stats = stats
        self._lag = lag

    def collect(self) -> Iterable[Metric]:
        snapshot = self._stats.snapshot()
        return list(
            families(
                self._stats.counters(),
                snapshot["dlq"],
                snapshot["db_ok"],
                snapshot["assigned_partitions"],
                self._lag.read(),
            )
        )


class SinkMetrics:
    def __init__(self, stats: SinkStats, dlq_depth: DlqDepth | None = None) -> None:
        self.registry = CollectorRegistry()
        self.lag = ConsumerLag()
        self.registry.register(_SinkCollector(stats, self.lag))
        if dlq_depth is not None:
            self.registry.register(dlq_depth)
        self.batch_seconds = Histogram(
            "sbp_sink_batch_duration_seconds",
            "From a batch's arrival to its commit: decode, write (retries included), "
            "dead letters, commit.",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
