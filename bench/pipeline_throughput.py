"""Benchmark of the faust worker: raw votes in Kafka → rows in PostgreSQL and Redis windows.

It encodes N valid v2 votes for a fresh tenant with the one Avro codec, produces
them straight to votes.raw (as the gateway would, bypassing HTTP), and times
from the first produce until (a) all N rows are in the tenant's `votes` (its own schema),
read under its RLS setting, and (b) the published Redis snapshots' 60-minute
windows add up to exactly N. The worker's /stats counters are diffed around
the run; a dead letter, a count above N or a worker restart fails the run.

Run: `.venv/bin/python -m bench.pipeline_throughput --votes 20000`
"""

from __future__ import annotations

import argparse
import json
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg
import redis
from psycopg import sql

from bench.cpu_usage import report, sample, top_snapshot
from bench.machine import describe_machine
from bench.tenant import BenchTenant, fresh_tenant, require_loopback
from bench.worker_stats import (
    all_workers_stats,
    delta,
    sink_stats,
    stage_progress,
    wait_until_quiet,
)
from devstack.raw_votes import RawVoteProducer, random_raw_votes
from sbp.settings import get_settings
from sinks.live.redis_keys import comfort_snapshots

MAX_VOTES = 1_000_000


def encoded_votes(
    producer: RawVoteProducer, tenant: BenchTenant, votes: int, seed: int
) -> list[tuple[bytes, bytes]]:
    """(key, value) pairs exactly as the gateway writes them to votes.raw."""
    # Recent, so every vote stays inside the 60-minute window for the whole run.
    generated = random_raw_votes(
        tenant.tenant_id,
        tenant.building_id,
        tenant.zones,
        votes,
        seed=seed,
        now=datetime.now(UTC),
        spread_s=5 * 60,
    )
    return [producer.encode(vote) for vote in generated]


def produce(
    producer: RawVoteProducer, records: list[tuple[bytes, bytes]], traced_batch: int
) -> None:
    """With `traced_batch` > 0, every run of that many records carries one sampled W3C
    trace context, as the records of one gateway request do (sbp/tracing/)."""
    headers: list[tuple[str, str | bytes | None]] | None = None
    for index, (key, value) in enumerate(records):
        if traced_batch and index % traced_batch == 0:
            traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            headers = [("traceparent", traceparent.encode())]
        producer.produce_bytes(key, value, headers=headers)
    producer.flush(60)


def stored_rows(conn: psycopg.Connection[Any], tenant_id: str) -> int:
    with conn.transaction():
        conn.execute("SELECT set_config('app.tenant_id', %s, true)", (tenant_id,))
        schema = conn.execute("SELECT sbp.tenant_schema(%s)", (tenant_id,)).fetchone()
        assert schema is not None and schema[0] is not None, "the bench tenant has no schema"
        table = sql.SQL("{}.votes").format(sql.Identifier(schema[0]))
        found = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(table)).fetchone()
    return int(found[0]) if found else 0


def windowed_votes(client: redis.Redis, tenant: BenchTenant) -> int:
    """Σ n over every zone and kind of the published 60-minute windows."""
    total = 0
    for raw in client.hgetall(comfort_snapshots(tenant.tenant_id, tenant.building_id)).values():
        for windows in json.loads(raw)["kinds"].values():
            total += int(windows.get("60m", {}).get("n", 0))
    return total


@dataclass
class Progress:
    """Seconds from the first produce until each milestone."""

    first_row: float | None = None
    postgres: float | None = None
    redis: float | None = None


def watch(
    tenant: BenchTenant,
    n: int,
    t0: float,
    args: argparse.Namespace,
    before: tuple[dict[str, int], dict[str, int]],
) -> Progress:
    """Poll PostgreSQL and Redis until both hold exactly n votes (10 polls a second),
    printing every 5 s how far each store, the stage and the sink got since `before`."""
    timeout, top = args.timeout, args.top
    progress, next_report, rows, windowed = Progress(), 5.0, 0, 0
    settings = tenant.settings
    with (
        psycopg.connect(settings.pg_dsn("app")) as conn,
        redis.Redis.from_url(settings.redis_url_for("ops")) as rds,
    ):
        while progress.postgres is None or progress.redis is None:
            elapsed = time.perf_counter() - t0
            if elapsed > timeout:
                raise SystemExit(f"timed out after {timeout}s: {rows} rows, {windowed} windowed")
            rows, windowed = stored_rows(conn, tenant.tenant_id), windowed_votes(rds, tenant)
            if rows > n or windowed > n:
                raise SystemExit(f"counted more than sent: {rows} rows, {windowed} windowed")
            if progress.first_row is None and rows:
                progress.first_row = elapsed
            if progress.postgres is None and rows == n:
                progress.postgres = elapsed
            if progress.redis is None and windowed == n:
                progress.redis = elapsed
            if top and rows >= n // 2:
                top = False
                print("top, with half the rows stored:\n" + top_snapshot())
            if elapsed >= next_report:
                print(
                    f"  t={elapsed:5.1f}s  rows {rows:>7}  in 60m windows {windowed:>7}  "
                    + stage_progress(*before, settings)
                )
                next_report += 5.0
            time.sleep(0.1)
    return progress


def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    require_loopback(settings)
    ready = httpx.get(f"http://{settings.host}:{settings.worker_web_port}/ready", timeout=5)
    if ready.status_code != 200:
        raise SystemExit(f"worker not ready: {ready.status_code} {ready.text}")
    tenant = fresh_tenant(settings, args.zones)
    producer = RawVoteProducer(settings)
    records = encoded_votes(producer, tenant, args.votes, args.seed)
    n = len(records)
    print("== pipeline throughput: votes.raw -> worker -> PostgreSQL + Redis ==")
    print(describe_machine())
    print(f"tenant {tenant.tenant_id} ({len(tenant.zones)} zones); {n} raw votes")
    if args.traced_batch:
        print(f"a sampled trace context per {args.traced_batch} votes, as from the gateway")
    print(wait_until_quiet(settings))

    stats_before, sink_before = all_workers_stats(settings), sink_stats(settings)
    cpu_before = sample()
    t0 = time.perf_counter()
    produce(producer, records, args.traced_batch)
    produced = time.perf_counter() - t0
    progress = watch(tenant, n, t0, args, (stats_before, sink_before))
    wall = time.perf_counter() - t0
    cpu = report(cpu_before, sample(), wall)
    changes = delta(stats_before, all_workers_stats(settings))

    print(f"produced {n} votes in {produced:.2f}s ({n / produced:,.0f} votes/s into votes.raw)")
    print(f"first row in PostgreSQL after {progress.first_row or 0:.2f}s")
    for label, took in (
        ("all rows in PostgreSQL", progress.postgres),
        ("60m windows sum to N", progress.redis),
    ):
        assert took is not None
        print(f"{label:<22} after {took:6.2f}s: {n / took:,.0f} votes/s end to end")
    print(f"worker /stats delta: {json.dumps(changes)}")
    print(cpu)
    if any(v < 0 for v in changes.values()):
        raise SystemExit("the worker restarted during the run: its counters went backwards")
    if any(k.startswith("dlq_") and v for k, v in changes.items()):
        raise SystemExit("records were dead-lettered during the run")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--votes", type=int, default=20_000, help="raw votes to produce")
    parser.add_argument("--zones", type=int, default=4, help="zones seeded for the tenant")
    parser.add_argument("--timeout", type=float, default=600.0, help="give up after (s)")
    parser.add_argument("--seed", type=int, default=20_000, help="random seed for the votes")
    parser.add_argument("--top", action="store_true", help="print `top` at half the rows")
    parser.add_argument(
        "--traced-batch",
        type=int,
        default=0,
        help="give every N votes one sampled trace context, as a gateway batch (0: none)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.votes <= MAX_VOTES:
        parser.error(f"--votes must be 1..{MAX_VOTES}")
    return args


if __name__ == "__main__":
    main(parse_args())
