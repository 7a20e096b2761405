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

The depth by reason counts the retained letters per `errorCode`: the same thread
reads each partition's new letters once, from where it stopped (at most
`LETTERS_PER_READ` a round, so a large backlog is caught up over a few rounds, and
`sbp_dlq_depth_by_reason_behind_records` says how many are not counted yet). When
retention moves a partition's start past the letters counted, that partition is
counted again from its new start. The counts are bounded by the reasons, not by
the letters.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from schemas.codec import AvroCodec, DecodeError
from streams.topics import VOTES_DLQ

log = logging.getLogger(__name__)
READ_TIMEOUT_S = 10.0
LETTERS_PER_READ = 20_000
# A letter the tally cannot decode (not a DLQ envelope) is counted under this reason.
UNREADABLE = "unreadable"

# (start offset, end offset) of each partition
Offsets = Mapping[int, tuple[int, int]]


def depths(offsets: Offsets) -> dict[int, int]:
    return {partition: max(0, end - start) for partition, (start, end) in offsets.items()}


@dataclass
class _Counted:
    start: int  # the log start the counts begin at
    position: int  # the next offset to count
    reasons: Counter[str] = field(default_factory=Counter)


class ReasonTally:
    """The retained letters per reason, counted once each as they are read. Pure."""

    def __init__(self) -> None:
        self._partitions: dict[int, _Counted] = {}
        self._ends: dict[int, int] = {}

    def to_read(self, offsets: Offsets) -> dict[int, tuple[int, int]]:
        """The offsets to read now, {partition: (from, to)}, given the current
        (start, end) of each partition."""
        for partition, (start, end) in offsets.items():
            counted = self._partitions.get(partition)
            if counted is None or start > counted.start or end < counted.position:
                # Retention removed letters these counts hold (or the topic was made
                # anew): count the partition again from its start.
                self._partitions[partition] = _Counted(start, start)
            self._ends[partition] = end
        return {
            p: (c.position, self._ends[p])
            for p, c in sorted(self._partitions.items())
            if c.position < self._ends[p]
        }

    def add(self, partition: int, offset: int, reason: str) -> None:
        counted = self._partitions[partition]
        if offset >= counted.position:
            counted.reasons[reason] += 1
            counted.position = offset + 1

    def skip_to(self, partition: int, offset: int) -> None:
        """Nothing below `offset` is left to read (a compacted or aborted gap)."""
        counted = self._partitions[partition]
        counted.position = max(counted.position, offset)

    def by_reason(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counted in self._partitions.values():
            total.update(counted.reasons)
        return total

    def behind(self) -> int:
        return sum(max(0, self._ends[p] - c.position) for p, c in self._partitions.items())


# Reads the letters in the ranges given, up to a number of them: (partition, offset,
# reason) each, and (partition, next offset) when a partition ends early.
ReadReasons = Callable[[dict[int, tuple[int, int]], int], Iterator[tuple[int, int, str | None]]]


class DlqDepth(Collector):
    def __init__(
        self,
        read_offsets: Callable[[], Offsets],
        every_s: float,
        read_reasons: ReadReasons | None = None,
    ) -> None:
        self._read_offsets = read_offsets
        self._read_reasons = read_reasons
        self._tally = ReasonTally()
        self._by_reason: Counter[str] = Counter()
        self._behind = 0
        self._every_s = every_s
        self._depths: dict[int, int] = {}
        self._read_at: float | None = None
        self._errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dlq-depth", daemon=True)

    def refresh(self) -> None:
        try:
            offsets = self._read_offsets()
        except Exception:
            self._errors += 1
            log.warning("reading %s offsets failed; keeping the last depth", VOTES_DLQ.name)
            return
        self._depths = depths(offsets)
        if self._read_reasons is not None:
            self._count_reasons(offsets, self._read_reasons)
        self._read_at = time.time()

    def _count_reasons(self, offsets: Offsets, read: ReadReasons) -> None:
        try:
            for partition, offset, reason in read(self._tally.to_read(offsets), LETTERS_PER_READ):
                if reason is None:
                    self._tally.skip_to(partition, offset)
                else:
                    self._tally.add(partition, offset, reason)
        except Exception:
            # What was counted stays counted; the rest is read next round.
            self._errors += 1
            log.warning("reading %s letters failed; counting the rest later", VOTES_DLQ.name)
        self._by_reason = self._tally.by_reason()
        self._behind = self._tally.behind()

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
        by_reason = GaugeMetricFamily(
            "sbp_dlq_depth_by_reason_records",
            "Dead letters retained in the DLQ topic, by reason (errorCode).",
            labels=["topic", "reason"],
        )
        for reason, records in sorted(self._by_reason.items()):
            by_reason.add_metric([VOTES_DLQ.name, reason], records)
        behind = GaugeMetricFamily(
            "sbp_dlq_depth_by_reason_behind_records",
            "Retained dead letters not counted by reason yet (caught up a round at a time).",
            value=self._behind,
        )
        return [
            depth,
            by_reason,
            behind,
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


def kafka_letter_reasons(config: Mapping[str, Any], codec: AvroCodec) -> ReadReasons:
    """A reader of the letters' reasons: a consumer that is assigned the partitions
    (it never joins its group or commits) and decodes each letter's `errorCode`."""

    def read(
        ranges: dict[int, tuple[int, int]], limit: int
    ) -> Iterator[tuple[int, int, str | None]]:
        todo = dict(ranges)
        if not todo:
            return
        consumer = Consumer({**config, "enable.auto.commit": False, "enable.partition.eof": True})
        try:
            consumer.assign([TopicPartition(VOTES_DLQ.name, p, s) for p, (s, _e) in todo.items()])
            deadline = time.monotonic() + READ_TIMEOUT_S
            read_now = 0
            while todo and read_now < limit and time.monotonic() < deadline:
                for msg in consumer.consume(num_messages=500, timeout=1.0):
                    partition, offset = msg.partition(), msg.offset()
                    if partition is None or offset is None or partition not in todo:
                        continue
                    error = msg.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            # The end as read: letters missing below it were compacted
                            # or aborted, and the range is done.
                            yield partition, offset, None
                            todo.pop(partition, None)
                        continue
                    read_now += 1
                    yield partition, offset, _reason(codec, msg.value())
                    if offset + 1 >= todo[partition][1]:
                        todo.pop(partition, None)
        finally:
            consumer.close()

    return read


def _reason(codec: AvroCodec, value: bytes | None) -> str:
    try:
        code = codec.decode(value).record.get("errorCode")
    except DecodeError:
        return UNREADABLE
    return code if isinstance(code, str) else UNREADABLE
