"""votes.raw → dedup, live buckets, votes.accepted: the one stage every vote passes.

votes.raw is keyed by zone, so a partition holds its zones' dedup entries,
buckets and progress together (streams/tables/vote_state.py). Per batch:

1. wait until faust has recovered the state (it may resume the stream a moment
   before recovery ends), and judge each record against the partition's own
   progress (streams/tables/partition_cursor.py): skip what is done, seek back
   over a gap;
2. decode (registry lookups off the loop, with timeouts) and migrate;
3. plan the batch (streams/tables/vote_batch.py): emits, dead letters, state;
4. write the state (RocksDB and changelog), produce the emits and dead letters;
5. await the previous batch's delivery reports (they had this batch's whole
   computation to arrive), and only then record that batch's progress, to the
   same changelog partition after the data it guards (`settle`).

A crash anywhere replays from the durable progress, and every step is
idempotent under that replay. faust may ack (and commit) a batch whose reports
are still in flight; the stage does not rely on faust's commits, and a
restart judges every record against its own progress again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import faust
from aiokafka.errors import IllegalStateError
from opentelemetry.trace import Tracer
from tenacity import AsyncRetrying, retry_if_exception_type, wait_exponential

from sbp.tracing.batch_spans import BatchSpans
from schemas.codec import AvroCodec, DecodeError, RegistryUnavailable, Writer
from streams.batch_guard import complete_batch
from streams.batch_guard import fail_stop as fail_stop_process
from streams.batch_producer import DeliveryBatch, DeliveryBatches, DeliveryFailed
from streams.clock import Clock
from streams.consumer_port import ConsumerPort
from streams.dlq import DeadLetters, SourceRecord
from streams.partition_state import PartitionState
from streams.tables.live_buckets import LiveBuckets
from streams.tables.partition_cursor import Admit, PartitionCursor
from streams.tables.vote_batch import Horizons, Item, Plan, plan_batch
from streams.tables.vote_migration import Invalid, migrate
from streams.tables.vote_state import decode, progress_key, split_bucket_state_key
from streams.topics import VOTES_ACCEPTED, VOTES_RAW

log = logging.getLogger(__name__)
T = TypeVar("T")
BATCH_MAX = 2000
BATCH_WITHIN_S = 0.1
REGISTRY_TIMEOUT_S = 5.0
CONSUMER_CALL_TIMEOUT_S = 10.0
# How long a batch that came during recovery may wait for it to end.
READY_WAIT_S = 30.0
READY_POLL_S = 0.05
STAGE_SPAN = f"process {VOTES_RAW.name}"


@dataclass
class StageStats:
    counts: Counter[str] = field(default_factory=Counter)


class VoteStage:
    def __init__(
        self,
        app: faust.App,
        consumer: ConsumerPort,
        state: PartitionState,
        producer: DeliveryBatches,
        codec: AvroCodec,
        accepted_writer: Writer,
        dead_letters: DeadLetters,
        live: LiveBuckets,
        clock: Clock,
        horizons: Horizons,
        fail_stop: Callable[[int, BaseException | None], None] = fail_stop_process,
        tracer: Tracer | None = None,
    ) -> None:
        self.app = app
        self.consumer = consumer
        self.state = state
        self.producer = producer
        self.codec = codec
        self.accepted_writer = accepted_writer
        self.dead_letters = dead_letters
        self.live = live
        self.clock = clock
        self.horizons = horizons
        self.cursors: dict[int, PartitionCursor] = {}
        # Partitions the keeper took on since they were last assigned.
        self._taken_on: set[int] = set()
        self.stats = StageStats()
        self._pending_progress: list[DeliveryBatch] = []
        # Batches whose data is produced and not yet confirmed, oldest first.
        self._in_flight: deque[tuple[DeliveryBatch, dict[int, int]]] = deque()
        self._settling = asyncio.Lock()
        self._fail_stop = fail_stop
        # A span per upstream trace in a batch; accepted votes carry their trace on.
        self.tracing: BatchSpans[Any] = BatchSpans(
            tracer, STAGE_SPAN, _event_headers, {"messaging.system": "kafka"}
        )

    # --- assignment -------------------------------------------------------

    def forget(self, partitions: set[int]) -> None:
        """Revoked: their state is the new owner's; reload from the store if they return."""
        for partition in partitions:
            self.cursors.pop(partition, None)
            self._taken_on.discard(partition)
            self.live.drop_partition(partition)

    def _cursor_from_progress(self, partition: int) -> PartitionCursor | None:
        """The partition's cursor, made from its durable progress; None if it has none yet."""
        cursor = self.cursors.get(partition)
        if cursor is not None:
            return cursor
        progress = decode(self.state.get(partition, progress_key(partition)))
        if progress is None:
            return None  # never processed: the keeper starts it at the log start
        cursor = PartitionCursor(expected=int(progress["o"]) + 1)
        self.cursors[partition] = cursor
        self._load_live(partition)
        return cursor

    def _load_live(self, partition: int) -> None:
        """Fill the live cache from the partition's recovered buckets (bounded by expiry)."""
        now_s = self.clock().timestamp()
        for key, raw in self.state.scan(partition, b"b|", limit=1_000_000):
            bucket = decode(raw)
            if bucket is not None and bucket.get("x", 0) > now_s:
                zone, kind, minute = split_bucket_state_key(key)
                self.live.put(partition, zone, kind, minute, bucket)

    async def keep_partitions(self) -> None:
        """The keeper's tick: every seek the stage needs happens here, never in a batch.

        - A newly held partition is not sought (a seek throws away what the
          consumer already fetched): its first record shows whether faust
          resumed at the stage's progress. One that stays quiet is checked
          against its log end after the patience, since faust may have
          committed past records it skipped and nothing new would show it.
        - A gap a batch found is sought back. Records below the progress are
          skipped one by one, never jumped: faust commits only offsets it
          acked in an unbroken run, so a jump would stop its commits for good.
        - A seek whose target never came (the partition went quiet) is repeated.

        Each call to the consumer has a timeout: during a rebalance it may not
        answer, and the next tick tries again.
        """
        # Records stopped coming: the last batch's progress must not wait for the next.
        await self.settle()
        now = time.monotonic()
        for partition in sorted(self.consumer.held()):
            if not self.state.is_open(partition):
                continue
            cursor = self._cursor_from_progress(partition)
            if cursor is None:
                start = await _bounded(self.consumer.log_start(partition))
                cursor = self.cursors.setdefault(partition, PartitionCursor(expected=start))
                self._load_live(partition)
            if partition not in self._taken_on:
                self._taken_on.add(partition)
                cursor.assigned(now)
                self.stats.counts["assigned"] += 1
            if cursor.quiet_overdue(now) and not cursor.seek_needed:
                cursor.quiet_deadline = None
                end = await _bounded(self.consumer.log_end(partition))
                if cursor.expected is not None and cursor.expected < end:
                    self.stats.counts["quiet_seeks"] += 1
                    cursor.seek_needed = True
            if cursor.overdue(now) and not cursor.seek_needed:
                end = await _bounded(self.consumer.log_end(partition))
                if cursor.expected is not None and cursor.expected >= end:
                    cursor.seeking = False  # nothing to read: the seek had nothing to bring
                    continue
                self.stats.counts["overdue_seeks"] += 1
                cursor.seek_needed = True
            if cursor.seek_needed:
                await self._seek_to_expected(partition, cursor)

    async def _seek_to_expected(self, partition: int, cursor: PartitionCursor) -> None:
        """Seek to the next offset to process, or to the log start if retention passed it."""
        earliest = await _bounded(self.consumer.log_start(partition))
        expected = cursor.expected
        if cursor.log_start_is(earliest):
            log.warning(
                "votes.raw[%d]: offsets %s..%d left the log (retention); moving on",
                partition,
                expected,
                earliest - 1,
            )
            self.stats.counts["retention_gaps"] += 1
        target = cursor.expected if cursor.expected is not None else earliest
        try:
            await _bounded(self.consumer.seek(partition, target))
        except IllegalStateError:
            # Revoked meanwhile (a rebalance is under way): the next owner starts it.
            self.forget({partition})
            return
        cursor.seek_needed = False
        cursor.seek_started(target, time.monotonic())

    # --- the batch --------------------------------------------------------

    async def handle(self, events: Sequence[Any]) -> None:
        if not await self._until_ready():
            # Never read state that faust has not finished restoring. These records
            # are read again: the next records of each partition show the gap, and
            # the keeper seeks it back (keep_partitions).
            self.stats.counts["deferred_not_ready"] += len(events)
            return
        held = self.consumer.held()
        by_partition: dict[int, list[Any]] = {}
        for event in events:
            message = event.message
            if message.partition not in held or not self.state.is_open(message.partition):
                self.stats.counts["not_held"] += 1
                continue
            by_partition.setdefault(message.partition, []).append(event)
        await self._resolve_schemas([e for evs in by_partition.values() for e in evs])
        deliveries = self.producer.batch()
        done: dict[int, int] = {}
        for partition, partition_events in by_partition.items():
            last = await self._stage_partition(deliveries, partition, partition_events)
            if last is not None:
                done[partition] = last
        # This batch's reports are awaited while the next batch is computed: the
        # worker does not sit idle for Kafka's acks. At most one batch is in flight.
        self._in_flight.append((deliveries, done))
        await self.settle(keep=1)

    async def handle_traced(self, events: Sequence[Any]) -> None:
        """`handle`, inside the spans of the traces its records carry (sbp/tracing/)."""
        with self.tracing.batch(events):
            await self.handle(events)

    async def settle(self, keep: int = 0) -> None:
        """Finish in-flight batches, oldest first, until at most `keep` remain.

        Finishing a batch: await every report of its data, then record each
        partition's progress, to the same changelog partition, after the data it
        guards. The progress records' own reports are awaited with the next
        batch: if one is lost, the partition replays a batch more, which every
        step absorbs. The lock keeps batches finishing in order, whoever calls
        (a batch, or the keeper when records stop coming). A failed report stops
        the process: no later batch may record progress past it.
        """
        async with self._settling:
            while len(self._in_flight) > keep:
                deliveries, done = self._in_flight[0]
                try:
                    offsets = await deliveries.confirm()
                except DeliveryFailed as exc:
                    self._fail_stop(len(done), exc)
                    raise
                self._in_flight.popleft()
                self.state.record_persisted(
                    {p: o for (t, p), o in offsets.items() if t == self.state.changelog_topic}
                )
                progress = self.producer.batch()
                for partition, last in done.items():
                    self.state.write(
                        progress, partition, {progress_key(partition): b'{"o":%d}' % last}
                    )
                self._pending_progress.append(progress)
                while len(self._pending_progress) > 1:
                    await self._pending_progress.pop(0).confirm()

    async def _until_ready(self) -> bool:
        """Hold a batch that came while faust still recovers; False to defer it.

        faust resumes the stream a moment before its recovery ends. Dropping
        those records left a gap in every partition, and seeking all of them
        back under load cost a start up to 200k re-read records. A rebalance is
        different: faust waits for the batch in hand before it reassigns, so a
        batch is never held then.
        """
        if self.consumer.ready():
            return True
        deadline = time.monotonic() + READY_WAIT_S
        while not self.consumer.ready():
            if self.consumer.rebalancing() or time.monotonic() >= deadline:
                return False
            await asyncio.sleep(READY_POLL_S)
        self.stats.counts["held_for_recovery"] += 1
        return True

    async def _stage_partition(
        self, deliveries: DeliveryBatch, partition: int, events: list[Any]
    ) -> int | None:
        cursor = self._cursor_from_progress(partition)
        if cursor is None:
            # Never processed, and the keeper has not set its cursor to the log
            # start yet: the next records then show the gap, which is sought back.
            self.stats.counts["deferred_no_cursor"] += len(events)
            return None
        admitted: list[Any] = []
        for event in sorted(events, key=lambda e: e.message.offset):
            offset = event.message.offset
            verdict = cursor.admit(offset, time.monotonic())
            if verdict is Admit.PROCESS:
                admitted.append(event)
                cursor.processed(offset)
                continue
            if verdict is Admit.GAP and not cursor.seek_needed:
                log.warning(
                    "votes.raw[%d]: gap, expected %s, got %d; seeking back",
                    partition,
                    cursor.expected,
                    offset,
                )
                self.stats.counts["gaps_repaired"] += 1
                # The keeper seeks; until then every record past the gap is skipped.
                cursor.seek_needed = True
                cursor.seeking = True
                cursor.seek_deadline = float("inf")
            self.stats.counts[f"skipped_{verdict.value}"] += 1
        if not admitted:
            return None
        items = [self._item(event) for event in admitted]
        plan = plan_batch(
            items, lambda keys: self.state.get_many(partition, keys), self._now_s(), self.horizons
        )
        self._apply(deliveries, partition, plan, {e.message.offset: e for e in admitted})
        return int(admitted[-1].message.offset)

    def _now_s(self) -> float:
        return self.clock().timestamp()

    def _item(self, event: Any) -> Item:
        message = event.message
        try:
            raw = self.codec.decode(message.value).record
        except DecodeError as exc:
            return Item(message.offset, message.key, None, exc.code, exc.message)
        result = migrate(raw)
        if isinstance(result, Invalid):
            return Item(message.offset, message.key, None, result.code, result.message)
        return Item(message.offset, message.key, result)

    def _apply(
        self, deliveries: DeliveryBatch, partition: int, plan: Plan, events: dict[int, Any]
    ) -> None:
        """Produce everything the plan says; the caller awaits the reports together."""
        self.state.write(deliveries, partition, plan.puts)
        for offset, vote in plan.emits:
            event = events[offset]
            deliveries.produce(
                VOTES_ACCEPTED.name,
                event.message.key,
                self.codec.encode(self.accepted_writer, vote),
                headers=self.tracing.headers_for(event),
            )
        for failure in plan.failures:
            self.dead_letters.send(
                deliveries, _source(events[failure.offset].message), failure.code, failure.message
            )
        for key, bucket in plan.buckets.items():
            zone, kind, minute = split_bucket_state_key(key)
            self.live.put(partition, zone, kind, minute, bucket)
        for zone, received_at in plan.live_received.items():
            self.live.received(zone, received_at)
        self.stats.counts.update(plan.counts)
        self.stats.counts["emitted"] += len(plan.emits)
        self.stats.counts["dead_lettered"] += len(plan.failures)

    async def _resolve_schemas(self, events: list[Any]) -> None:
        """Fetch writer schemas not seen yet, in a thread with a timeout; outages are waited out."""
        unknown = {
            sid
            for e in events
            if (sid := self.codec.schema_id_of(e.message.value)) is not None
            and not self.codec.knows(sid)
        }
        for schema_id in sorted(unknown):
            async for attempt in AsyncRetrying(
                retry=retry_if_exception_type((RegistryUnavailable, TimeoutError)),
                wait=wait_exponential(multiplier=0.2, max=5.0),
                reraise=True,
            ):
                # An id the registry lacks is no outage: its records are dead-lettered.
                with attempt, contextlib.suppress(DecodeError):
                    await asyncio.wait_for(
                        asyncio.to_thread(self.codec.fetch, schema_id), REGISTRY_TIMEOUT_S
                    )

    def install(self, raw_votes: Any) -> Any:
        """Register the stage as the app's agent on `raw_votes`; returns the agent."""
        stage = self

        async def vote_stage(stream: Any) -> None:
            async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
                await complete_batch(stage.handle_traced, events)

        return self.app.agent(raw_votes, name="vote-stage")(vote_stage)


async def _bounded(call: Awaitable[T]) -> T:
    return await asyncio.wait_for(call, CONSUMER_CALL_TIMEOUT_S)


def _event_headers(event: Any) -> Any:
    return event.message.headers


def _source(message: Any) -> SourceRecord:
    headers = message.headers or []
    if isinstance(headers, dict):
        headers = list(headers.items())
    return SourceRecord(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=[
            (str(k), v if isinstance(v, bytes | None) else str(v).encode()) for k, v in headers
        ],
    )
