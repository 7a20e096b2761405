"""The vote-stage worker's Prometheus metrics, served at `/metrics` on its faust web port.

What the stage already counts for `/stats` is read, not counted twice: a
scrape copies those counters, and each held partition's lag, into a snapshot
on the event loop (plain reads, no I/O, no await), and the exposition text is
rendered from the snapshot in a thread. The hot path pays nothing for the
counters; the only metric it feeds is the ingest→publish histogram, once per
publish tick with that tick's votes.

- Lag of group `sbp-worker` on votes.raw, per held partition: the high
  watermark the consumer learnt from its last fetch minus the next offset the
  stage's progress expects (sbp/metrics/consumer_lag.py). No broker call.
- Partitions taken on and revoked (rebalances), votes judged first, replayed
  (re-emitted after a crash; consumers are idempotent) or duplicate, records
  re-read below the progress, gaps sought back, and dead letters by reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from sbp.metrics.consumer_lag import partition_lag
from sbp.metrics.dead_letters import dead_letter_family
from streams.dlq import VOTE_STAGE_REASONS
from streams.topics import VOTES_RAW, WORKER_APP_ID

# From a quiet pipeline (the next one-second publish tick) to a backlog being worked off.
LATENCY_BUCKETS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0, 60.0, 300.0, 1800.0)
# The stage's counters (streams/agents/vote_stage.py) behind each exported series.
VOTE_OUTCOMES = ("first", "replay", "duplicate")
SKIPPED = {"below_progress": "skipped_skip", "past_gap": "skipped_gap"}
SEEKS = {"quiet": "quiet_seeks", "overdue": "overdue_seeks"}
TIMER_ERROR_PREFIX = "timer_errors_"


@dataclass(frozen=True)
class WorkerSnapshot:
    # votes.raw partition → records not yet processed (only partitions whose lag is known)
    lag: Mapping[int, int] = field(default_factory=dict)
    held: int = 0
    stage: Mapping[str, int] = field(default_factory=dict)
    dead_letters: Mapping[str, int] = field(default_factory=dict)
    published: int = 0


def lag_of(
    expected: Mapping[int, int | None], highwater: Callable[[int], int | None]
) -> dict[int, int]:
    """Lag per partition from the stage's next expected offsets and the consumer's highwaters."""
    lags = {}
    for partition, next_offset in expected.items():
        lag = partition_lag(highwater(partition), next_offset)
        if lag is not None:
            lags[partition] = lag
    return lags


def families(snapshot: WorkerSnapshot) -> Iterator[Metric]:
    group, topic = WORKER_APP_ID, VOTES_RAW.name
    stage = snapshot.stage
    lag = GaugeMetricFamily(
        "sbp_consumer_lag_records",
        "Records in the partition that the group has not finished with.",
        labels=["group", "topic", "partition"],
    )
    for partition, records in sorted(snapshot.lag.items()):
        lag.add_metric([group, topic, str(partition)], records)
    yield lag
    yield _gauge(
        "sbp_consumer_partitions_held", "Partitions this consumer holds.", group, snapshot.held
    )
    yield _group_counter(
        "sbp_consumer_partitions_assigned",
        "Partitions taken on after an assignment (each partition once per assignment).",
        group,
        stage.get("assigned", 0),
    )
    yield _group_counter(
        "sbp_consumer_partitions_revoked",
        "Partitions revoked from this consumer by rebalances.",
        group,
        stage.get("revoked", 0),
    )
    yield _counter(
        "sbp_vote_stage_votes",
        "Votes judged by the vote stage: first seen, replayed after a crash (emitted again), "
        "or duplicate (dropped). The outcomes exclude each other.",
        "outcome",
        {outcome: stage.get(outcome, 0) for outcome in VOTE_OUTCOMES},
    )
    yield CounterMetricFamily(
        "sbp_vote_stage_votes_not_live",
        "Emitted votes too old for any live window: stored, never in the live windows.",
        value=stage.get("not_live", 0),
    )
    yield _counter(
        "sbp_vote_stage_records_skipped",
        "Records skipped: already processed (below the progress) or read past a gap.",
        "reason",
        {reason: stage.get(key, 0) for reason, key in SKIPPED.items()},
    )
    yield CounterMetricFamily(
        "sbp_vote_stage_gaps_repaired",
        "Gaps between consecutive processed offsets, each sought back.",
        value=stage.get("gaps_repaired", 0),
    )
    yield _counter(
        "sbp_vote_stage_seeks",
        "Seeks made because an assigned partition stayed quiet or a seek did not arrive.",
        "reason",
        {reason: stage.get(key, 0) for reason, key in SEEKS.items()},
    )
    yield dead_letter_family(group, VOTE_STAGE_REASONS, snapshot.dead_letters)
    yield CounterMetricFamily(
        "sbp_live_snapshots_published",
        "Zone snapshots written to Redis (and so to the SSE streams).",
        value=snapshot.published,
    )
    yield _counter(
        "sbp_worker_timer_errors",
        "Timer ticks that failed (retried on the next tick).",
        "timer",
        {
            key.removeprefix(TIMER_ERROR_PREFIX): n
            for key, n in stage.items()
            if key.startswith(TIMER_ERROR_PREFIX)
        },
    )


def _gauge(name: str, doc: str, group: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["group"])
    family.add_metric([group], value)
    return family


def _group_counter(name: str, doc: str, group: str, value: float) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=["group"])
    family.add_metric([group], value)
    return family


def _counter(name: str, doc: str, label: str, values: Mapping[str, float]) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=[label])
    for value, n in sorted(values.items()):
        family.add_metric([value], n)
    return family


class _Latest(Collector):
    """Yields the families of the snapshot the last scrape took."""

    def __init__(self) -> None:
        self.snapshot = WorkerSnapshot()

    def collect(self) -> Iterable[Metric]:
        return list(families(self.snapshot))


class WorkerMetrics:
    def __init__(self, read_snapshot: Callable[[], WorkerSnapshot]) -> None:
        self.registry = CollectorRegistry()
        self._read_snapshot = read_snapshot
        self._latest = _Latest()
        self.registry.register(self._latest)
        self.ingest_to_publish = Histogram(
            "sbp_ingest_to_publish_seconds",
            "From a vote's receivedAt at the gateway to the publish of its zone's windows "
            "to Redis (where SSE reads them).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_latencies(self, seconds: list[float]) -> None:
        observe = self.ingest_to_publish.observe
        for s in seconds:
            # Gateway and worker clocks may differ a little: never a negative latency.
            observe(max(0.0, s))

    async def render(self) -> bytes:
        """Call on the event loop: the snapshot is taken here, the text made in a thread."""
        self._latest.snapshot = self._read_snapshot()
        return await asyncio.to_thread(generate_latest, self.registry)
