"""The PostgreSQL sink: its own consumer of votes.accepted, storing every vote in its
tenant's `votes` table (one schema per tenant).

Run as `python -m sinks.timescale.sink_worker` (`sbp dev up` starts it). It is
a consumer group of its own (`PG_SINK_GROUP`), apart from the vote stage, so a
PostgreSQL outage delays history and never the live windows: the vote stage
keeps publishing while this process waits.

Each loop reads up to `BATCH_MAX` records, decodes them with the one Avro
codec, stores them (one COPY + `INSERT … ON CONFLICT DO NOTHING` per tenant,
sinks/timescale/vote_writer.py), sends what it cannot store to votes.dlq, and
only then commits the batch's offsets, synchronously.

Invariants:

- **Commit after write.** An offset is committed only once every record below
  it is durable in PostgreSQL (its transaction committed) or confirmed in the
  DLQ. A crash at any point therefore loses nothing: the uncommitted records
  are read again.
- **Exactly once in effect.** Reading again is harmless because the write is
  idempotent: the primary key (tenant_id, vote_uuid, client_ts) and `ON
  CONFLICT DO NOTHING` turn a replayed row into a no-op (counted as
  `replayed`), and a vote re-emitted by the vote stage after its own crash
  carries the same key. At-least-once delivery plus an idempotent write is
  exactly one row per accepted vote. (Dead letters are at-least-once: a crash
  between their confirmation and the commit sends them again.)
- **A poison record never blocks its partition.** A record that cannot be
  decoded, is not an accepted vote, belongs to a tenant that has no schema
  (`unknown_tenant`), or that PostgreSQL refuses for its data goes to the DLQ
  with its reason; the rest of its batch is stored.
- **Transient failures wait, permanent ones stop.** A database or registry
  outage is retried inside the batch (sinks/timescale/retry_policy.py) and
  never dead-letters data. A configuration fault (no privilege, a missing
  table, bad credentials) stops the process with a CRITICAL line.
- **Bounded.** A batch holds at most `BATCH_MAX` records, librdkafka's
  prefetch is capped, and the counters are fixed in number.
- **Observed without cost per record.** The loop works its lag out from the
  consumer's own figures after each `consume()` and on each retry, marks a
  batch's first offsets and times the batch; `/metrics` (sink_metrics.py),
  served in the web thread, reads those figures and never calls the consumer.

Exit codes: 0 after SIGTERM/SIGINT (the current batch finished and committed,
or, during an outage, left uncommitted to be read again); 78 (EX_CONFIG) on a
permanent database error; 70 (EX_SOFTWARE) on a fatal Kafka client error.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import threading
import time
from types import FrameType
from typing import Any

import psycopg
from confluent_kafka import Consumer, KafkaException, Message, TopicPartition
from confluent_kafka.admin import AdminClient
from opentelemetry.trace import Tracer

from sbp.settings import Settings, get_settings
from sbp.tracing.batch_spans import BatchSpans
from sbp.tracing.kafka_context import Headers
from sbp.tracing.provider import open_tracing
from schemas import catalog
from schemas.codec import AvroCodec, DecodeError, RegistryUnavailable, Writer, registry_client
from sinks.timescale.pg_failures import PermanentDatabaseError, describe
from sinks.timescale.retry_policy import until_success
from sinks.timescale.sink_batch import PendingVote, commit_positions, group_by_tenant
from sinks.timescale.sink_metrics import SinkMetrics
from sinks.timescale.sink_web import SinkStats, SinkWebServer
from sinks.timescale.vote_store import UnknownTenant, VoteStore
from sinks.timescale.vote_writer import to_row
from streams.batch_producer import BatchProducer, DeliveryFailed
from streams.dlq import DeadLetters, SourceRecord
from streams.dlq_depth import DlqDepth, kafka_letter_reasons, kafka_offsets
from streams.topics import PG_SINK_DLQ_DEPTH_GROUP, PG_SINK_GROUP, VOTES_ACCEPTED, VOTES_DLQ

log = logging.getLogger("sinks.timescale.sink_worker")

BATCH_MAX = 2000
POLL_TIMEOUT_S = 0.5
# How long an idle sink trusts its last database exchange before asking again.
IDLE_PING_S = 5.0
COMMITTED_TIMEOUT_S = 5.0

SINK_SERVICE = "sbp-pg-sink"

EXIT_STOPPED = 0
EXIT_KAFKA_FATAL = 70
EXIT_PERMANENT_DB = 78

ACCEPTED_SUBJECT = catalog.value_subject(VOTES_ACCEPTED.name)
DLQ_SUBJECT = catalog.value_subject(VOTES_DLQ.name)

# One dead letter to send: the source record, its error code and message.
Letter = tuple[Message, str, str]


def consumer_config(settings: Settings, group: str = PG_SINK_GROUP) -> dict[str, Any]:
    return {
        **settings.kafka_config("sink"),
        "group.id": group,
        "client.id": group,
        "group.protocol": "classic",
        # Sink instances come and go; moving only the partitions that must move
        # keeps the others writing through a rebalance.
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "isolation.level": "read_committed",
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 3_000,
        # A batch waiting out a PostgreSQL outage does not call consume(). Past
        # this the group moves the partitions on; the commit of that batch is
        # then refused and its records are read again, which is a no-op.
        "max.poll.interval.ms": 600_000,
        # librdkafka's prefetch queue: bounded, whatever the backlog.
        "queued.max.messages.kbytes": 16_384,
        "queued.min.messages": 20_000,
    }


def _source(msg: Message) -> SourceRecord:
    raw = msg.headers() or []
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    headers = [(name, value.encode() if isinstance(value, str) else value) for name, value in pairs]
    return SourceRecord(
        topic=msg.topic() or "",
        partition=msg.partition() or 0,
        offset=msg.offset() or 0,
        key=msg.key(),
        value=msg.value(),
        headers=headers,
    )


def _trace_headers(msg: Message) -> Headers | None:
    headers = msg.headers()
    return headers if isinstance(headers, list) else None


class SinkWorker:
    def __init__(
        self,
        consumer: Consumer,
        store: VoteStore,
        codec: AvroCodec,
        dead_letters: DeadLetters,
        producer: BatchProducer,
        stats: SinkStats,
        stop: threading.Event,
        topic: str = VOTES_ACCEPTED.name,
        tracer: Tracer | None = None,
        metrics: SinkMetrics | None = None,
    ) -> None:
        self._consumer = consumer
        self._metrics = metrics or SinkMetrics(stats)
        self._topic = topic
        self._store = store
        self._codec = codec
        self._dead_letters = dead_letters
        self._producer = producer
        self._stats = stats
        self._stop = stop
        # BatchProducer confirms deliveries on an event loop; this process has
        # no other use for one, so it runs only while dead letters are confirmed.
        self._loop = asyncio.new_event_loop()
        self._registry_retry = until_success(
            "schema registry",
            lambda exc: isinstance(exc, RegistryUnavailable),
            stop,
            self._count_retry,
        )
        self._dlq_retry = until_success(
            "dead-letter delivery",
            lambda exc: isinstance(exc, DeliveryFailed),
            stop,
            self._count_retry,
        )
        self._last_db_check = time.monotonic()
        # A span per upstream trace in a batch (sbp/tracing/batch_spans.py).
        self._tracing: BatchSpans[Message] = BatchSpans(
            tracer,
            f"store {topic}",
            _trace_headers,
            {"messaging.system": "kafka", "db.system.name": "postgresql"},
        )

    def _count_retry(self) -> None:
        self._stats.add(retries=1)
        # A batch waiting out an outage: the lag keeps being worked out meanwhile.
        self._metrics.lag.refresh()

    def subscribe(self) -> None:
        # Rebalance callbacks run inside consume(), and consume() is called only
        # after the previous batch was written and committed. So when partitions
        # are revoked nothing is half-done: there is no buffered record, no
        # write in flight and no pending commit to hand over or to drop.
        self._consumer.subscribe(
            [self._topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_revoke,
        )

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._stats.assigned([(tp.topic, tp.partition) for tp in partitions])
        log.info("assigned %d partitions", len(partitions))
        starts: dict[int, int | None] = {tp.partition: None for tp in partitions}
        try:
            # Once per assignment, never per scrape: where each partition starts,
            # so its lag is known before its first record arrives.
            committed = consumer.committed(partitions, timeout=COMMITTED_TIMEOUT_S)
        except KafkaException as exc:
            log.warning("committed offsets not read (%s); lag shown from the first record", exc)
        else:
            starts.update({tp.partition: tp.offset for tp in committed if tp.offset >= 0})
        self._metrics.lag.assigned(starts)

    def _on_revoke(self, _consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._stats.revoked([(tp.topic, tp.partition) for tp in partitions])
        self._metrics.lag.revoked(tp.partition for tp in partitions)
        log.info("revoked %d partitions", len(partitions))

    def run(self) -> int:
        while not self._stop.is_set():
            messages = self._consumer.consume(num_messages=BATCH_MAX, timeout=POLL_TIMEOUT_S)
            if not messages:
                self._metrics.lag.refresh()
                self._check_idle_database()
                continue
            try:
                with self._tracing.batch(messages):
                    self._handle(messages)
            except (RegistryUnavailable, DeliveryFailed, psycopg.Error) as exc:
                # Only transient errors escape a batch (row errors are dead-
                # lettered, permanent ones are PermanentDatabaseError), and
                # only once the stop event has ended their retries.
                if not self._stop.is_set():
                    raise
                # Stopped while waiting out an outage: nothing of this batch was
                # committed, so it is read again at the next start.
                log.warning(
                    "stopping with a batch of %d uncommitted (%s); it will be read again",
                    len(messages),
                    describe(exc),
                )
        return EXIT_STOPPED

    def close(self) -> None:
        self._loop.close()

    def _handle(self, messages: list[Message]) -> None:
        started = time.monotonic()
        first_offsets: dict[int, int] = {}
        for msg in messages:
            if msg.error() is None:
                first_offsets.setdefault(msg.partition() or 0, msg.offset() or 0)
        # Until its commit, the batch counts as lag from its first offsets.
        self._metrics.lag.batch_started(first_offsets)
        self._metrics.lag.refresh()
        try:
            self._store_and_commit(messages)
        finally:
            self._metrics.lag.batch_finished()
        self._metrics.lag.refresh()
        self._metrics.batch_seconds.observe(time.monotonic() - started)

    def _store_and_commit(self, messages: list[Message]) -> None:
        positions: list[tuple[str, int, int]] = []
        pending: list[PendingVote[Message]] = []
        letters: list[Letter] = []
        for msg in messages:
            error = msg.error()
            if error is not None:
                if error.fatal():
                    raise KafkaException(error)
                log.warning("consumer: %s", error)
                continue
            positions.append((msg.topic() or "", msg.partition() or 0, msg.offset() or 0))
            try:
                row = to_row(self._decode(msg.value()))
            except DecodeError as exc:
                letters.append((msg, exc.code, exc.message))
            except KeyError as exc:
                letters.append((msg, "wrong_schema", f"not an accepted vote: no field {exc}"))
            else:
                pending.append(PendingVote(row, msg))

        inserted = replayed = 0
        for tenant_id, items in group_by_tenant(pending).items():
            outcome = self._store.store(tenant_id, items)
            inserted += outcome.inserted
            replayed += len(items) - outcome.inserted - len(outcome.rejected)
            for item, refusal in outcome.rejected:
                if isinstance(refusal, UnknownTenant):
                    letters.append((item.source, "unknown_tenant", str(refusal)))
                else:
                    letters.append((item.source, "db_rejected", describe(refusal)))

        if letters:
            self._dlq_retry(self._send_dead_letters, letters)
            self._stats.dead_lettered([code for _msg, code, _text in letters])
        self._commit(commit_positions(positions))
        self._stats.add(inserted=inserted, replayed=replayed, batches=1, records=len(positions))

    def _decode(self, value: bytes | None) -> dict[str, Any]:
        schema_id = AvroCodec.schema_id_of(value)
        if schema_id is not None and not self._codec.knows(schema_id):
            # An id not seen yet (an older schema version): ask the registry,
            # waiting out an outage. An id it does not have is a DecodeError.
            self._registry_retry(self._codec.fetch, schema_id)
        return self._codec.decode(value).record

    def _send_dead_letters(self, letters: list[Letter]) -> None:
        async def send_all() -> None:
            deliveries = self._producer.batch()
            for msg, code, text in letters:
                self._dead_letters.send(deliveries, _source(msg), code, text)
            await deliveries.confirm()

        # On a retry every letter is produced again: the DLQ is at-least-once.
        self._loop.run_until_complete(send_all())

    def _commit(self, offsets: dict[tuple[str, int], int]) -> None:
        if not offsets:
            return
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            result = self._consumer.commit(offsets=partitions, asynchronous=False)
        except KafkaException as exc:
            # Not retried here: a rebalance in progress completes only inside
            # consume(). The batch is stored, so reading it again is a no-op.
            log.warning("offsets not committed (%s); the batch will be read again", exc)
            return
        for tp in result:
            if tp.error is not None:
                log.warning("offset of %s[%d] not committed: %s", tp.topic, tp.partition, tp.error)

    def _check_idle_database(self) -> None:
        # An idle sink has no write to tell it the database went away; ask now
        # and then so /ready stays truthful. A permanent error stops it here too.
        now = time.monotonic()
        if now - self._last_db_check >= IDLE_PING_S or not self._store.healthy:
            self._last_db_check = now
            self._store.ping()


def _resolve_writers(codec: AvroCodec, stop: threading.Event) -> Writer:
    """The DLQ writer, and every votes.accepted version pre-cached for decoding.

    The registry keeps its schemas in PostgreSQL, so during a database outage
    it cannot answer: what the sink needs to decode is fetched before that.
    """
    retry = until_success("schema registry", lambda exc: isinstance(exc, RegistryUnavailable), stop)
    for version in catalog.subjects()[ACCEPTED_SUBJECT]:
        retry(codec.writer, ACCEPTED_SUBJECT, version.text)
    dlq_writer: Writer = retry(codec.writer, DLQ_SUBJECT, catalog.latest(DLQ_SUBJECT).text)
    return dlq_writer


def run(settings: Settings, stop: threading.Event) -> int:
    stats = SinkStats()
    admin_config: dict[str, str | int | float | bool] = {
        **settings.kafka_config("sink"),
        "client.id": f"{PG_SINK_GROUP}-dlq-depth",
    }
    letters_config = {
        **settings.kafka_config("sink"),
        "group.id": PG_SINK_DLQ_DEPTH_GROUP,
        "client.id": PG_SINK_DLQ_DEPTH_GROUP,
    }
    dlq_depth = DlqDepth(
        kafka_offsets(AdminClient(admin_config)),
        settings.dlq_depth_every_s,
        # A codec of its own: the thread's registry look-ups share nothing with the loop's.
        kafka_letter_reasons(letters_config, AvroCodec(registry_client(settings))),
    )
    metrics = SinkMetrics(stats, dlq_depth)
    web = SinkWebServer(settings.host, settings.sink_web_port, stats, metrics.render)
    web.start()
    dlq_depth.start()
    registry = registry_client(settings)

    def database_retry() -> None:
        stats.add(retries=1)
        # On the loop's thread, which waits here: the lag is worked out meanwhile.
        metrics.lag.refresh()

    store = VoteStore(
        settings.pg_dsn("sink"), stop, on_retry=database_retry, on_health=stats.set_db_ok
    )
    producer: BatchProducer | None = None
    consumer: Consumer | None = None
    worker: SinkWorker | None = None
    tracing = open_tracing(settings, SINK_SERVICE)
    try:
        codec = AvroCodec(registry)
        dlq_writer = _resolve_writers(codec, stop)
        store.open()
        producer = BatchProducer(settings.kafka_config("sink"), client_id=f"{PG_SINK_GROUP}-dlq")
        consumer = Consumer(consumer_config(settings))
        metrics.lag.attach(consumer)
        dead_letters = DeadLetters(codec, dlq_writer, PG_SINK_GROUP)
        worker = SinkWorker(
            consumer,
            store,
            codec,
            dead_letters,
            producer,
            stats,
            stop,
            tracer=tracing.tracer if tracing else None,
            metrics=metrics,
        )
        worker.subscribe()
        log.info(
            "pg sink started: group %s on %s, /ready and /stats on %s:%d",
            PG_SINK_GROUP,
            VOTES_ACCEPTED.name,
            settings.host,
            web.port,
        )
        return worker.run()
    except PermanentDatabaseError as exc:
        log.critical(
            "permanent database error, stopping (exit %d) - fix the database or the "
            "sink's role and start it again: %s",
            EXIT_PERMANENT_DB,
            exc,
        )
        return EXIT_PERMANENT_DB
    except KafkaException as exc:
        log.critical("fatal Kafka error, stopping (exit %d): %s", EXIT_KAFKA_FATAL, exc)
        return EXIT_KAFKA_FATAL
    except (RegistryUnavailable, psycopg.Error) as exc:
        if not stop.is_set():
            raise
        log.info("stopped while starting: %s", exc)
        return EXIT_STOPPED
    finally:
        # close() leaves the group at once, so the partitions move without
        # waiting for the session timeout; it commits nothing (auto-commit off).
        if consumer is not None:
            metrics.lag.detach()
            consumer.close()
        if producer is not None:
            producer.close()
        if worker is not None:
            worker.close()
        store.close()
        registry.close()
        dlq_depth.stop()
        web.stop()
        if tracing is not None:
            tracing.close()
        log.info("pg sink stopped")


def main() -> None:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    # The registry client logs every HTTP request at INFO.
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    stop = threading.Event()

    def request_stop(signum: int, _frame: FrameType | None) -> None:
        log.info("%s: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    sys.exit(run(get_settings(), stop))


if __name__ == "__main__":
    main()
