"""DLQ depth: the records votes.dlq holds, per partition, read in a thread of its own.

Depth is each partition's end offset minus its start offset: every dead letter
still retained. Kafka does not remove a record when it is reprocessed, so this
is an upper bound of the records not yet reprocessed; it falls only as
retention deletes old segments. Alerts therefore watch its growth (and the
`sbp_dlq_records_total` counters by reason) rather than its level alone.

Both offsets come from one ListOffsets request each, every `every_s` seconds,
never per scrape; a scrape reads the last figures. A failed read keeps the
previous figures and is counted, and the time of the last good read is
exported so a stale depth is visible.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping

from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from streams.topics import VOTES_DLQ

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 10.0

# (start offset, end offset) of each partition
Offsets = Mapping[int, tuple[int, int]]


def depths(offsets: Offsets) -> dict[int, int]:
    return {partition: max(0, end - start) for partition, (start, end) in offsets.items()}


class DlqDepth(Collector):
    def __init__(self, read_offsets: Callable[[], Offsets], every_s: float) -> None:
        self._read_offsets = read_offsets
        self._every_s = every_s
        self._depths: dict[int, int] = {}
        self._read_at: float | None = None
        self._errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlq-depth", daemon=True)

    def refresh(self) -> None:
        try:
            fresh = depths(self._read_offsets())
        except Exception:
            self._errors += 1
            log.warning("reading %s offsets failed; keeping the last depth", VOTES_DLQ.name)
            return
        self._depths = fresh
        self._read_at = time.time()

    def _run(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            self._stop.wait(self._every_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=READ_TIMEOUT_S + 1)

    def collect(self) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "sbp_dlq_depth_records",
            "Dead letters retained in the DLQ topic (end offset minus start offset).",
            labels=["topic", "partition"],
        )
        for partition, records in sorted(self._depths.items()):
            depth.add_metric([VOTES_DLQ.name, str(partition)], records)
        read_at = GaugeMetricFamily(
            "sbp_dlq_depth_read_timestamp_seconds",
            "When the DLQ depth was last read successfully (Unix time).",
        )
        if self._read_at is not None:
            read_at.add_metric([], self._read_at)
        return [
            depth,
            read_at,
            CounterMetricFamily(
                "sbp_dlq_depth_read_errors", "Failed reads of the DLQ offsets.", value=self._errors
            ),
        ]


def kafka_offsets(
    admin: AdminClient, topic: str = VOTES_DLQ.name, partitions: int = VOTES_DLQ.partitions
) -> Callable[[], dict[int, tuple[int, int]]]:
    """A reader of the topic's (start, end) offsets: two ListOffsets requests per read."""
    tps = [TopicPartition(topic, p) for p in range(partitions)]

    def read() -> dict[int, tuple[int, int]]:
        earliest = OffsetSpec.earliest()  # type: ignore[no-untyped-call]
        latest = OffsetSpec.latest()  # type: ignore[no-untyped-call]
        starts = admin.list_offsets({tp: earliest for tp in tps}, request_timeout=READ_TIMEOUT_S)
        ends = admin.list_offsets({tp: latest for tp in tps}, request_timeout=READ_TIMEOUT_S)
        return {
            tp.partition: (f.result().offset, ends[tp].result().offset) for tp, f in starts.items()
        }

    return read
