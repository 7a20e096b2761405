"""The floor of faust-streaming's own per-record cost, beside a bare confluent-kafka loop.

It explains how much of the worker / bare ratio (bench/worker_alone.py) faust
itself takes, before the vote stage does any work:

1. Create a scratch topic `bench.faust-floor-<hex>` (24 partitions, deleted
   after the run, whatever happens) and produce N raw votes to it, encoded as
   devstack.raw_votes encodes them for votes.raw.
2. Read all N records four times, each in a fresh process with a fresh
   consumer group from the earliest offset:
   - bare-empty:   confluent-kafka `consume(1000)`, counting (as bench/bare_loop.py reads);
   - bare-decode:  the same, decoding each value with the one Avro codec;
   - faust-empty:  a minimal faust app (no tables, web server off, the worker's
     consumer settings from streams/app.py) with one agent iterating
     `take_events(2000, within=0.1)` like the vote stage, counting only; faust
     acks and commits each batch as usual;
   - faust-decode: the same agent, decoding each value with the codec.
3. Print each variant's records/s and CPU seconds, measured over the same
   window: from the end of the first batch to the end of the batch completing
   N, which leaves out start-up, group join and fetch warm-up. The process's
   CPU over its whole life, the broker's CPU and the rest of the machine's
   (noise on a shared machine) are printed too.
4. Print the ratios faust / bare, in records/s and in CPU per record. The
   bare-empty loop waits on its fetches rather than on its core, so its
   records/s is the broker's pace; the CPU per record is the steadier measure.

Nothing of the stack is stopped, and nothing but the scratch topic is touched.

Run: `.venv/bin/python -m bench.faust_floor [--votes 200000]`
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, Producer, TopicPartition

from bench.bare_loop import end_offsets, scratch_topic
from bench.cpu_usage import group_seconds, neighbours_line, sample
from bench.machine import describe_machine
from bench.tenant import require_loopback
from bench.worker_alone import CHUNK
from devstack.raw_votes import RawVoteProducer, random_raw_votes
from sbp.settings import REPO_ROOT, Settings, get_settings
from schemas.codec import AvroCodec, registry_client

VARIANTS = ("bare-empty", "bare-decode", "faust-empty", "faust-decode")
PARTITIONS = 24
ZONES = tuple(f"z{i}" for i in range(1, 201))
# As the vote stage batches (streams/agents/vote_stage.py).
TAKE_MAX = 2000
TAKE_WITHIN_S = 0.1
CHILD_TIMEOUT_S = 900
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Window:
    """Wall clock and process CPU between the end of the first batch and the end of the Nth
    record's batch: the records in between are N minus the first batch."""

    n: int
    read: int = 0
    first_batch: int = 0
    t0: float = 0.0
    cpu0: float = 0.0
    t1: float = 0.0
    cpu1: float = 0.0

    def batch_done(self, count: int) -> bool:
        # process_time() counts every thread of the process, librdkafka's and aiokafka's too.
        now, cpu = time.perf_counter(), time.process_time()
        if not self.read:
            self.first_batch, self.t0, self.cpu0 = count, now, cpu
        self.read += count
        if self.read < self.n:
            return False
        self.t1, self.cpu1 = now, cpu
        return True

    def result(self, started: float) -> dict[str, float]:
        return {
            "records": self.read - self.first_batch,
            "seconds": self.t1 - self.t0,
            "cpu_s": self.cpu1 - self.cpu0,
            "started_to_done_s": self.t1 - started,
            "read": self.read,
        }


# --- the measured processes ------------------------------------------------------------------


def _codec(settings: Settings, schema_id: int) -> AvroCodec:
    codec = AvroCodec(registry_client(settings))
    codec.fetch(schema_id)  # before the clock: no registry lookup inside the window
    return codec


def bare_child(settings: Settings, args: argparse.Namespace, started: float) -> dict[str, float]:
    codec = _codec(settings, args.schema_id) if args.child == "bare-decode" else None
    consumer = Consumer(
        {
            **settings.kafka_config("admin"),
            "group.id": f"bench-faust-floor-bare-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    window = Window(args.votes)
    try:
        consumer.assign(
            [TopicPartition(args.topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)]
        )
        while True:
            messages = consumer.consume(num_messages=1000, timeout=1.0)
            for message in messages:
                if message.error() is not None:
                    raise KafkaException(message.error())
                if codec is not None:
                    codec.decode(message.value())
            if messages and window.batch_done(len(messages)):
                return window.result(started)
    finally:
        consumer.close()


def faust_child(settings: Settings, args: argparse.Namespace, started: float) -> None:
    import faust  # only the faust variants pay its import

    from streams.app import stream_options

    codec = _codec(settings, args.schema_id) if args.child == "faust-decode" else None
    app = faust.App(
        f"bench-faust-floor-{uuid.uuid4().hex[:8]}",  # the app id is the consumer group
        datadir=args.datadir,
        # The worker's consumer and topic settings, without its RocksDB table, its
        # static membership and its web pages.
        **stream_options(settings, principal="admin"),
        web_enabled=False,
    )
    topic = app.topic(
        args.topic,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        partitions=PARTITIONS,
    )
    window = Window(args.votes)

    async def floor(stream: Any) -> None:
        async for events in stream.take_events(TAKE_MAX, within=TAKE_WITHIN_S):
            if codec is not None:
                for event in events:
                    codec.decode(event.message.value)
            if window.batch_done(len(events)):
                _write_result(args.result, window.result(started))
                # A graceful faust shutdown takes seconds and measures nothing; the fresh
                # group's offsets go with the scratch topic.
                os._exit(0)

    app.agent(topic, name="floor")(floor)
    # Same event loop as the worker: faust.Worker's default, not one we pick.
    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


def _write_result(path: str, result: dict[str, float]) -> None:
    Path(path).write_text(json.dumps(result))


def child_main(args: argparse.Namespace) -> None:
    started = time.perf_counter()
    settings = get_settings()
    if args.child.startswith("bare"):
        _write_result(args.result, bare_child(settings, args, started))
    else:
        faust_child(settings, args, started)


# --- the run ---------------------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    records: int
    seconds: float
    cpu_s: float
    started_to_done_s: float
    lifetime_cpu_s: float
    lifetime_s: float
    kafka_cores: float
    others_cores: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu_us_per_record(self) -> float:
        return 1e6 * self.cpu_s / self.records if self.records else 0.0


def produce(settings: Settings, topic: str, n: int, seed: int) -> int:
    """N raw votes encoded as devstack.raw_votes does; returns the writer's schema id.

    RawVoteProducer only writes to votes.raw, so its encoder is used with a
    producer of the same settings pointed at the scratch topic.
    """
    encoder = RawVoteProducer(settings)
    producer = Producer(
        {
            **settings.kafka_config("admin"),
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": "murmur2_random",
            "linger.ms": 20,
        }
    )
    tenant_id, now = f"bench-{uuid.uuid4().hex[:12]}", datetime.now(UTC)
    for chunk, first in enumerate(range(0, n, CHUNK)):
        votes = random_raw_votes(
            tenant_id, "b1", ZONES, min(CHUNK, n - first), seed=seed + chunk, now=now, spread_s=1800
        )
        for vote in votes:
            key, value = encoder.encode(vote)
            while True:
                try:
                    producer.produce(topic, key=key, value=value)
                    break
                except BufferError:  # the local queue is full: let deliveries drain it
                    producer.poll(0.05)
            producer.poll(0)
    if left := producer.flush(120):
        raise RuntimeError(f"{left} votes not confirmed by Kafka")
    return encoder.writer.schema_id


def run_variant(name: str, topic: str, args: argparse.Namespace, schema_id: int) -> Variant:
    workdir = Path(tempfile.mkdtemp(prefix="faust-floor-", dir="/tmp"))
    result_path, log_path = workdir / "result.json", workdir / "child.log"
    argv = [sys.executable, "-m", "bench.faust_floor", "--child", name, "--topic", topic]
    argv += ["--votes", str(args.votes), "--schema-id", str(schema_id)]
    argv += ["--datadir", str(workdir / "data"), "--result", str(result_path)]
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_before = sample()
    started = time.perf_counter()
    try:
        with log_path.open("wb") as log:
            code = subprocess.run(
                argv, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, timeout=CHILD_TIMEOUT_S
            ).returncode
        lifetime_s = time.perf_counter() - started
        if code != 0 or not result_path.exists():
            tail = log_path.read_text(errors="replace")[-3000:]
            raise SystemExit(f"{name} failed (exit {code}):\n{tail}")
        result = json.loads(result_path.read_text())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    lifetime_cpu = (after_children.ru_utime - before_children.ru_utime) + (
        after_children.ru_stime - before_children.ru_stime
    )
    cpu_after = sample()
    # The broker serving the reads is part of the run; whatever else was busy is noise.
    kafka_s = group_seconds(cpu_before, cpu_after).get("kafka", 0.0)
    busy_s = (cpu_after.machine[0] - cpu_before.machine[0]) / _TICKS
    return Variant(
        name=name,
        records=int(result["records"]),
        seconds=result["seconds"],
        cpu_s=result["cpu_s"],
        started_to_done_s=result["started_to_done_s"],
        lifetime_cpu_s=lifetime_cpu,
        lifetime_s=lifetime_s,
        kafka_cores=kafka_s / lifetime_s,
        others_cores=max(0.0, busy_s - lifetime_cpu - kafka_s) / lifetime_s,
    )


def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    require_loopback(settings)
    print("== faust floor: faust-streaming's own per-record cost, beside a bare loop ==")
    print(describe_machine())
    print(neighbours_line())
    topic_name = f"bench.faust-floor-{uuid.uuid4().hex[:8]}"
    results: list[Variant] = []
    with scratch_topic(settings, topic_name) as topic:
        t0 = time.perf_counter()
        schema_id = produce(settings, topic, args.votes, args.seed)
        stored = sum(end_offsets(settings, topic).values())
        print(
            f"produced {args.votes} raw votes to {topic} in {time.perf_counter() - t0:.1f}s "
            f"({stored} records stored, writer schema id {schema_id})"
        )
        if stored != args.votes:
            raise SystemExit(f"the scratch topic holds {stored} records, not {args.votes}")
        for name in VARIANTS:
            variant = run_variant(name, topic, args, schema_id)
            results.append(variant)
            print(
                f"  {name:<13} {variant.rate:>9,.0f} records/s  {variant.cpu_s:6.2f} cpu-s "
                f"over {variant.seconds:5.2f}s ({variant.cpu_us_per_record:5.1f} cpu-us/record); "
                f"process: {variant.lifetime_cpu_s:5.2f} cpu-s in {variant.lifetime_s:5.1f}s, "
                f"done {variant.started_to_done_s:5.1f}s after start; "
                f"kafka {variant.kafka_cores:.2f} cores, rest of machine {variant.others_cores:.2f}"
            )
    by_name = {v.name: v for v in results}
    for faust_name, bare_name in (
        ("faust-empty", "bare-empty"),
        ("faust-decode", "bare-decode"),
        ("faust-decode", "bare-empty"),
    ):
        f, b = by_name[faust_name], by_name[bare_name]
        print(
            f"ratio {faust_name} / {bare_name}: {f.rate / b.rate:.3f} in records/s, "
            f"{f.cpu_us_per_record / b.cpu_us_per_record:.2f}x the CPU per record"
        )
    decode_us = by_name["bare-decode"].cpu_us_per_record - by_name["bare-empty"].cpu_us_per_record
    faust_us = by_name["faust-empty"].cpu_us_per_record - by_name["bare-empty"].cpu_us_per_record
    print(
        f"per record: decoding costs {decode_us:.1f} cpu-us (bare-decode - bare-empty), "
        f"faust's consumption {faust_us:.1f} cpu-us beyond the bare loop (faust-empty - bare-empty)"
    )


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--votes", type=int, default=200_000, help="raw votes to produce and read")
    parser.add_argument("--seed", type=int, default=200_000, help="random seed for the votes")
    # The measured processes are this module run again with these:
    parser.add_argument("--child", choices=VARIANTS, help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    parser.add_argument("--schema-id", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--datadir", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if not 10 * TAKE_MAX <= args.votes <= 5_000_000:
        parser.error(f"--votes must be {10 * TAKE_MAX}..5000000")
    return args


if __name__ == "__main__":
    parsed = parse_args()
    if parsed.child:
        child_main(parsed)
    else:
        main(parsed)
