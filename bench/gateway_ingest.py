"""Benchmark of the HTTP ingestion path: POST /api/v1/votes/batch on the local gateway.

N concurrent clients post pre-built batches of valid v2 votes for a fresh
tenant until a fixed total is sent. Each request comes from its own occupant,
as after a wave of phones reconnecting, so the per-caller rate budget is never
what is measured. Every item must come back `accepted`: a run with any other
answer reports what went wrong and exits non-zero instead of a figure.

Run: `.venv/bin/python -m bench.gateway_ingest --votes 20000`
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

from bench.cpu_usage import report, sample, top_snapshot
from bench.machine import describe_machine
from bench.tenant import BenchTenant, fresh_tenant, require_loopback
from bench.worker_stats import wait_until_quiet
from sbp.settings import get_settings

KINDS = ("thermal", "air", "noise", "light")
MAX_VOTES = 1_000_000


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


def percentile(sorted_values: list[float], pct: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(pct / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


async def _post(client: httpx.AsyncClient, body: bytes, token: str, tally: Tally) -> None:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    started = time.perf_counter()
    try:
        response = await client.post("/api/v1/votes/batch", content=body, headers=headers)
    except httpx.HTTPError as exc:
        tally.failures[f"transport:{type(exc).__name__}"] += 1
        return
    tally.latencies_s.append(time.perf_counter() - started)
    if response.status_code != 200:
        try:
            code = response.json().get("error", {}).get("code", "?")
        except ValueError:  # not even a JSON error body
            code = response.text[:60]
        tally.failures[f"http_{response.status_code}:{code}"] += 1
        return
    for result in response.json()["results"]:
        tally.statuses[result["status"]] += 1
        if result["status"] != "accepted":
            tally.failures[f"{result['status']}:{result.get('error', {}).get('code', '-')}"] += 1


async def post_all(
    base_url: str, bodies: list[bytes], tokens: list[str], clients: int, top: bool
) -> Tally:
    tally = Tally()
    queue = list(zip(bodies, tokens, strict=True))
    queue.reverse()  # pop() from the end hands batches out in order
    half = len(queue) // 2
    # At most one `top`, taken beside the clients (never by one of them) halfway through.
    snapshots: list[asyncio.Task[str]] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=30.0) as client:

        async def worker() -> None:
            while queue:
                body, token = queue.pop()
                if top and not snapshots and len(queue) <= half:
                    snapshots.append(asyncio.create_task(asyncio.to_thread(top_snapshot)))
                await _post(client, body, token, tally)

        await asyncio.gather(*(worker() for _ in range(clients)))
    for snapshot in snapshots:
        print("top, halfway through the timed run:\n" + await snapshot)
    return tally


def _check(tally: Tally, expected_items: int, what: str) -> None:
    accepted = tally.statuses["accepted"]
    if tally.failures or accepted != expected_items:
        detail = ", ".join(f"{k} x{v}" for k, v in tally.failures.most_common())
        raise SystemExit(f"{what}: {accepted}/{expected_items} accepted; failures: {detail}")


def main(args: argparse.Namespace) -> None:
    settings = get_settings()
    require_loopback(settings)
    base_url = f"http://{settings.host}:{settings.gateway_port}"
    ready = httpx.get(f"{base_url}/readyz", timeout=5)
    if ready.status_code != 200:
        raise SystemExit(f"gateway not ready: {ready.status_code} {ready.text}")

    print("== gateway ingest: POST /api/v1/votes/batch ==")
    print(describe_machine())
    # The worker shares the CPUs: a previous run's backlog would slow this one down.
    print(wait_until_quiet(settings, limit_s=args.timeout))
    # Votes and tokens are made after the wait, so none is late or expired when posted.
    tenant = fresh_tenant(settings, args.zones)
    batches = math.ceil(args.votes / args.batch)
    warmup = args.clients if args.warmup else 0
    bodies = build_bodies(tenant, (batches + warmup) * args.batch, args.batch, seed=args.seed)
    tokens = tenant.tokens(len(bodies), ttl_s=int(args.timeout) + 120)
    votes = sum(len(json.loads(b)["items"]) for b in bodies[warmup:])

    print(
        f"tenant {tenant.tenant_id} ({len(tenant.zones)} zones); {args.clients} clients; "
        f"{batches} batches of {args.batch} = {votes} votes (+{warmup} warm-up batches)"
    )
    if warmup:
        warming = post_all(base_url, bodies[:warmup], tokens[:warmup], args.clients, False)
        _check(asyncio.run(warming), warmup * args.batch, "warm-up")

    cpu_before, started = sample(), time.perf_counter()
    try:
        timed = post_all(base_url, bodies[warmup:], tokens[warmup:], args.clients, args.top)
        tally = asyncio.run(asyncio.wait_for(timed, timeout=args.timeout))
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
    print(cpu)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--votes", type=int, default=20_000, help="votes in the timed run (whole batches)"
    )
    parser.add_argument("--clients", type=int, default=8, help="concurrent HTTP clients")
    parser.add_argument("--batch", type=int, default=100, help="votes per request (1-100)")
    parser.add_argument("--zones", type=int, default=4, help="zones seeded for the tenant")
    parser.add_argument("--timeout", type=float, default=300.0, help="give up after (s)")
    parser.add_argument("--seed", type=int, default=20_000, help="random seed for the votes")
    parser.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the untimed warm-up batch per client",
    )
    parser.add_argument("--top", action="store_true", help="print `top` halfway through")
    args = parser.parse_args(argv)
    if not 1 <= args.votes <= MAX_VOTES:
        parser.error(f"--votes must be 1..{MAX_VOTES}")
    if not 1 <= args.batch <= 100:
        parser.error("--batch must be 1..100")
    if not 1 <= args.clients <= 256:
        parser.error("--clients must be 1..256")
    return args


if __name__ == "__main__":
    main(parse_args())
