"""Benchmark of the HTTP ingestion path: POST /api/v1/votes/batch on the local gateway.

N concurrent clients post pre-built batches of valid v2 votes for a fresh
tenant until a fixed total is sent. Each request comes from its own occupant,
as after a wave of phones reconnecting, so the per-caller rate budget is never
what is measured. Every item must come back `accepted`: a run with any other
answer reports what went wrong and exits non-zero instead of a figure.

The clients speak HTTP/1.1 over keep-alive sockets with pre-encoded requests,
so the load generator costs little of the CPU it shares with the gateway. The
gateway's resident memory (RSS) is sampled from /proc through the run.

Figures: votes/s, request latency (p50, p95, p99, max), the gateway's peak
RSS, CPU per process, and the machine's description.

Run: `.venv/bin/python -m bench.gateway_ingest --votes 60000`
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import httpx
import orjson

from bench.cpu_usage import report, sample, top_snapshot
from bench.http_client import TRANSPORT_ERRORS, http_request, percentile, read_response, run_fast
from bench.machine import describe_machine
from bench.process_memory import RssSampler, find_gateway_pid
from bench.tenant import BenchTenant, fresh_tenant, require_loopback
from bench.worker_stats import wait_until_quiet
from sbp.settings import Settings, get_settings

KINDS = ("thermal", "air", "noise", "light")
MAX_VOTES = 2_000_000
BATCH_PATH = "/api/v1/votes/batch"


@dataclass
class Tally:
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)


def _vote(tenant: BenchTenant, rng: random.Random, i: int, now: datetime) -> dict[str, object]:
    kind = KINDS[i % len(KINDS)]
    vote: dict[str, object] = {
        "voteUuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "buildingId": tenant.building_id,
        "zoneId": rng.choice(tenant.zones),
        "kind": kind,
        "value": rng.randint(-3, 3) if kind == "thermal" else rng.randint(1, 5),
        # Recent, so no item is late or too far ahead of the gateway's clock.
        "clientTs": (now - timedelta(seconds=rng.randint(5, 120))).isoformat(),
        "deviceId": f"bench-device-{rng.randint(1, 500)}",
        "appVersion": "2.0.0-bench",
        "schemaVersion": 2,
    }
    if kind == "thermal":
        vote["preference"] = rng.choice(("warmer", "no_change", "cooler"))
    return vote


def build_bodies(tenant: BenchTenant, votes: int, batch: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    items = [_vote(tenant, rng, i, now) for i in range(votes)]
    return [json.dumps({"items": items[i : i + batch]}).encode() for i in range(0, votes, batch)]


def _tally_response(status: int, payload: bytes, tally: Tally) -> None:
    if status != 200:
        try:
            code = orjson.loads(payload).get("error", {}).get("code", "?")
        except orjson.JSONDecodeError:  # not even a JSON error body
            code = payload[:60].decode(errors="replace")
        tally.failures[f"http_{status}:{code}"] += 1
        return
    for result in orjson.loads(payload)["results"]:
        tally.statuses[result["status"]] += 1
        if result["status"] != "accepted":
            tally.failures[f"{result['status']}:{result.get('error', {}).get('code', '-')}"] += 1


async def post_all(host: str, port: int, requests: list[bytes], clients: int, top: bool) -> Tally:
    tally = Tally()
    queue = list(reversed(requests))  # pop() from the end hands requests out in order
    half = len(queue) // 2
    # At most one `top`, taken beside the clients (never by one of them) halfway through.
    snapshots: list[asyncio.Task[str]] = []

    async def client() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while queue:
                request = queue.pop()
                if top and not snapshots and len(queue) <= half:
                    snapshots.append(asyncio.create_task(asyncio.to_thread(top_snapshot)))
                started = time.perf_counter()
                try:
                    writer.write(request)
                    status, payload = await read_response(reader)
                except TRANSPORT_ERRORS as exc:
                    tally.failures[f"transport:{type(exc).__name__}"] += 1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    continue
                tally.latencies_s.append(time.perf_counter() - started)
                _tally_response(status, payload, tally)
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))
    for snapshot in snapshots:
        print("top, halfway through the timed run:\n" + await snapshot)
    return tally


def _check(tally: Tally, expected_items: int, what: str) -> None:
    accepted = tally.statuses["accepted"]
    if tally.failures or accepted != expected_items:
        detail = ", ".join(f"{k} x{v}" for k, v in tally.failures.most_common())
        raise SystemExit(f"{what}: {accepted}/{expected_items} accepted; failures: {detail}")


def _worker_line(settings: Settings, limit_s: float) -> str:
    try:
        # The worker shares the CPUs: a previous run's backlog would slow this one down.
        return wait_until_quiet(settings, limit_s=limit_s)
    except httpx.HTTPError:
        return "worker: not running (the gateway is measured alone; votes stay in votes.raw)"


def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    require_loopback(settings)
    host, port = settings.host, settings.gateway_port
    ready = httpx.get(f"http://{host}:{port}/readyz", timeout=5)
    if ready.status_code != 200:
        raise SystemExit(f"gateway not ready: {ready.status_code} {ready.text}")
    pid = find_gateway_pid(settings)
    if pid is None:
        raise SystemExit(f"no gateway.app process found serving port {port}")

    print("== gateway ingest: POST /api/v1/votes/batch ==")
    print(describe_machine())
    print(_worker_line(settings, args.timeout))
    # Votes and tokens are made after the wait, so none is late or expired when posted.
    tenant = fresh_tenant(settings, args.zones)
    batches = math.ceil(args.votes / args.batch)
    warmup = args.clients * args.warmup_rounds
    bodies = build_bodies(tenant, (batches + warmup) * args.batch, args.batch, seed=args.seed)
    tokens = tenant.tokens(len(bodies), ttl_s=int(args.timeout) + 120)
    requests = [
        http_request(host, port, BATCH_PATH, b, t) for b, t in zip(bodies, tokens, strict=True)
    ]
    votes = sum(len(orjson.loads(b)["items"]) for b in bodies[warmup:])

    print(
        f"tenant {tenant.tenant_id} ({len(tenant.zones)} zones); {args.clients} clients; "
        f"{batches} batches of {args.batch} = {votes} votes (+{warmup} warm-up batches); "
        f"gateway pid {pid}"
    )
    if warmup:
        warming = post_all(host, port, requests[:warmup], args.clients, False)
        _check(run_fast(warming), warmup * args.batch, "warm-up")

    cpu_before, started = sample(), time.perf_counter()
    with RssSampler(pid) as rss:
        try:
            timed = post_all(host, port, requests[warmup:], args.clients, args.top)
            tally = run_fast(asyncio.wait_for(timed, timeout=args.timeout))
        except TimeoutError:
            raise SystemExit(f"not finished within {args.timeout}s") from None
        wall = time.perf_counter() - started
    cpu = report(cpu_before, sample(), wall)
    _check(tally, votes, "timed run")

    lat = sorted(tally.latencies_s)
    ms = {p: 1000 * percentile(lat, p) for p in (50, 95, 99, 100)}
    print(
        f"accepted {votes}/{votes} votes in {wall:.2f}s: {votes / wall:,.0f} votes/s "
        f"({len(lat) / wall:.1f} requests/s)"
    )
    print(
        f"request latency ms: p50 {ms[50]:.1f}  p95 {ms[95]:.1f}  "
        f"p99 {ms[99]:.1f}  max {ms[100]:.1f}"
    )
    print(rss.line("gateway"))
    print(cpu)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--votes", type=int, default=60_000, help="votes in the timed run (whole batches)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP connections")
    parser.add_argument("--batch", type=int, default=100, help="votes per request (1-100)")
    parser.add_argument("--zones", type=int, default=4, help="zones seeded for the tenant")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    parser.add_argument("--seed", type=int, default=20_000, help="random seed for the votes")
    parser.add_argument(
        "--warmup-rounds",
        type=int,
        default=2,
        help="untimed warm-up batches per client before the timed run (0: none)",
    )
    parser.add_argument("--top", action="store_true", help="print `top` halfway through")
    args = parser.parse_args(argv)
    if not 1 <= args.votes <= MAX_VOTES:
        parser.error(f"--votes must be 1..{MAX_VOTES}")
    if not 1 <= args.batch <= 100:
        parser.error("--batch must be 1..100")
    if not 1 <= args.clients <= 256:
        parser.error("--clients must be 1..256")
    if not 0 <= args.warmup_rounds <= 100:
        parser.error("--warmup-rounds must be 0..100")
    return args


if __name__ == "__main__":
    main(parse_args())
