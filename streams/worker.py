"""Entry point of a vote-stage worker: `python -m streams.worker --instance=N`.

Builds the faust app, the vote-state table, the stage agent and its two timers
(live publishing, state expiry), the config view (every tenant's zones and
settings, followed in a thread of its own: streams/config_view.py), and the
worker's pages: `/ready` (partitions assigned, the state recovered, and the
config view caught up with the config topics), `/stats` (what the stage did)
and `/metrics` (Prometheus: streams/worker_metrics.py).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import faust
from faust.exceptions import ConsumerNotStarted
from faust.types import TP
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_PLAIN_0_0_4

from sbp.settings import Settings, get_settings
from sbp.tracing.provider import open_tracing
from schemas import catalog
from schemas.codec import AvroCodec, RegistryUnavailable, Writer, registry_client
from sinks.live.redis_client import connect
from streams.agents.live_publisher import LivePublisher
from streams.agents.state_sweeper import StateSweeper
from streams.agents.vote_stage import VoteStage
from streams.app import create_app, is_ready, raw_topic, vote_state_table
from streams.batch_producer import BatchProducer
from streams.clock import clock_from_env
from streams.config_view import ConfigView
from streams.consumer_patch import never_drop_records_of
from streams.consumer_port import FaustConsumer
from streams.dlq import DeadLetters
from streams.gc_meter import GcMeter, tune_collector
from streams.kafka_acls import WORKER_CONFIG_GROUP
from streams.partition_state import PartitionState
from streams.tables.live_buckets import LiveBuckets
from streams.tables.vote_batch import Horizons
from streams.topics import VOTE_STATE_CHANGELOG, VOTES_ACCEPTED, VOTES_DLQ, VOTES_RAW, WORKER_APP_ID
from streams.worker_metrics import WorkerMetrics, WorkerSnapshot, lag_of

SWEEP_EVERY_S = 5.0
STAGE_SERVICE = "sbp-vote-stage"
log = logging.getLogger(__name__)


def resolve_writer(codec: AvroCodec, topic: str, timeout_s: float = 120.0) -> Writer:
    """The registered id of a subject's newest schema; retried while the registry starts."""
    subject = catalog.value_subject(topic)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return codec.writer(subject, catalog.latest(subject).text)
        except RegistryUnavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def build(settings: Settings) -> tuple[faust.App, VoteStage]:
    codec = AvroCodec(registry_client(settings))
    # Writers resolved before the loop runs, so no lookup ever sits in a batch.
    accepted = resolve_writer(codec, VOTES_ACCEPTED.name)
    dlq_writer = resolve_writer(codec, VOTES_DLQ.name)
    app = create_app(settings)
    tracing = open_tracing(settings, STAGE_SERVICE, instance=str(settings.worker_instance))
    table = vote_state_table(app)
    producer = BatchProducer(
        settings.kafka_config("worker"), client_id=f"{WORKER_APP_ID}-{settings.worker_instance}"
    )
    stage = VoteStage(
        app=app,
        consumer=FaustConsumer(app, VOTES_RAW.name),
        state=PartitionState.of_table(table, VOTE_STATE_CHANGELOG.name),
        producer=producer,
        codec=codec,
        accepted_writer=accepted,
        dead_letters=DeadLetters(codec, dlq_writer, WORKER_APP_ID),
        live=LiveBuckets(),
        clock=clock_from_env(),
        horizons=Horizons(settings.dedup_ttl_s, settings.live_bucket_ttl_s),
        tracer=tracing.tracer if tracing else None,
    )
    stage.install(raw_topic(app, VOTES_RAW))
    never_drop_records_of(app, VOTES_RAW.name)
    # Every tenant's config in every worker, not partitioned like the votes. Its own
    # codec: the thread's registry look-ups share nothing with the event loop's.
    config = ConfigView(
        settings.kafka_config("worker"),
        AvroCodec(registry_client(settings)),
        group_id=WORKER_CONFIG_GROUP,
    )
    config.start()

    def snapshot() -> WorkerSnapshot:
        held = stage.consumer.held()
        return WorkerSnapshot(
            lag=lag_of(
                {p: c.expected for p, c in stage.cursors.items() if p in held},
                lambda partition: _highwater(app, partition),
            ),
            held=len(held),
            stage=dict(stage.stats.counts),
            dead_letters=dict(stage.dead_letters.counts),
            published=publisher.published,
        )

    metrics = WorkerMetrics(snapshot)
    publisher = LivePublisher(
        stage,
        connect(settings.redis_url_for("worker")),
        config,
        observe_latencies=metrics.observe_latencies,
    )
    sweeper = StateSweeper(stage)
    gc_meter = GcMeter().install()

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]
    async def on_revoked(sender: Any, revoked: Any, **_kwargs: Any) -> None:
        partitions = {tp.partition for tp in revoked if tp.topic == VOTES_RAW.name}
        stage.stats.counts["revoked"] += len(partitions)
        stage.forget(partitions)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]
    async def stop_config_view(sender: Any, **_kwargs: Any) -> None:
        # In a thread: joining the view's thread must not hold the loop.
        await asyncio.to_thread(config.close)
        if tracing is not None:
            await asyncio.to_thread(tracing.close)

    @app.timer(0.5)  # type: ignore[untyped-decorator]
    async def keep_partitions() -> None:
        if stage.consumer.ready():
            await _guarded("partition keeper", stage.keep_partitions, stage)

    @app.timer(1.0)  # type: ignore[untyped-decorator]
    async def publish_live() -> None:
        await _guarded("publishing", publisher.tick, stage)

    @app.timer(SWEEP_EVERY_S)  # type: ignore[untyped-decorator]
    async def sweep_state() -> None:
        await _guarded("expiry sweep", sweeper.tick, stage)

    @app.page("/ready")
    class Readiness(View):
        async def get(self, request: Request) -> Response:
            ready = (
                is_ready(app)
                and bool(stage.cursors or not stage.consumer.held())
                and config.ready.is_set()
            )
            return self.json({"ready": ready}, status=200 if ready else 503)

    @app.page("/stats")
    class Stats(View):
        async def get(self, request: Request) -> Response:
            return self.json(
                {
                    **stage.stats.counts,
                    **{f"dlq_{code}": n for code, n in stage.dead_letters.counts.items()},
                    **{f"expired_{kind}": n for kind, n in sweeper.counts.items()},
                    **gc_meter.stats(),
                    "published": publisher.published,
                    "zones_removed": publisher.removed,
                    "removed_zones_withheld": publisher.withheld,
                    "config_records": config.records,
                    "config_records_skipped": config.skipped,
                    "partitions": sorted(stage.cursors),
                    "gaps": sum(c.gaps for c in stage.cursors.values()),
                }
            )

    @app.page("/metrics")
    class Metrics(View):
        async def get(self, request: Request) -> Response:
            # As a header: aiohttp refuses a charset in its content_type argument.
            body = await metrics.render()
            return self.bytes(body, headers={"Content-Type": CONTENT_TYPE_PLAIN_0_0_4})

    return app, stage


def _highwater(app: faust.App, partition: int) -> int | None:
    """The high watermark the consumer learnt from its last fetch of the partition."""
    try:
        return int(app.consumer.highwater(TP(VOTES_RAW.name, partition)))
    except (AssertionError, KeyError, TypeError, ConsumerNotStarted):
        # Revoked a moment ago (aiokafka asserts the assignment), not fetched yet, or
        # the consumer not started: no figure for it in this scrape.
        return None


async def _guarded(what: str, tick: Callable[[], Awaitable[None]], stage: VoteStage) -> None:
    """A timer that raises takes the whole worker down; this one logs and tries next tick.

    Neither timer's work is lost by a failed tick: dirty zones stay dirty, and
    expired keys are found again on the next walk.
    """
    try:
        await tick()
    except Exception:
        stage.stats.counts[f"timer_errors_{what.replace(' ', '_')}"] += 1
        log.exception("%s failed; retrying on the next tick", what)


def main() -> None:
    parser = argparse.ArgumentParser(prog="streams.worker")
    parser.add_argument("--instance", type=int, default=None)
    args = parser.parse_args()
    settings = get_settings()
    if args.instance is not None:
        settings = settings.model_copy(update={"worker_instance": args.instance})
    # faust creates only the last level of its data dir.
    settings.worker_data_dir().mkdir(parents=True, exist_ok=True)
    app, _stage = build(settings)
    tune_collector()
    worker = faust.Worker(app, loglevel="info")
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
