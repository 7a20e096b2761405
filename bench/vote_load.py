"""Open-loop vote load for the gateway: paced request slots, per-zone answer times.

A request slot falls due every `batch / rate` seconds for `duration` seconds.
Each user (occupant token) has one keep-alive connection (bench/http_client.py)
and takes the next free slot, so a slow answer holds up no other request
unless every connection is busy; the slot backlog and late sends are counted.
Bodies are built just before sending, so `clientTs` is always a few seconds
old. A request that fails in transport is sent again with the same votes; on
such a re-send a `duplicate` answer counts as accepted, because the gateway
marks a vote only once Kafka has confirmed it.

For latency matching (bench/latency_match.py) the load keeps, per zone, when
each answer arrived, when its request was sent and how many of the zone's
votes it accepted.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
import uuid
from array import array
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import orjson

from bench.http_client import TRANSPORT_ERRORS, http_request, read_response
from bench.tenant import BenchTenant
from sbp.settings import Settings

BATCH_PATH = "/api/v1/votes/batch"
KINDS = ("thermal", "air", "noise", "light")
ATTEMPTS = 3
IDLE_RECONNECT_S = 4.0


@dataclass
class Load:
    """What the load generator sent and what the gateway answered."""

    requests: int = 0
    accepted: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    latencies_s: list[float] = field(default_factory=list)
    # Per zone, in answer order: when requests were answered and sent, and how many of the
    # zone's votes each had accepted. Arrays, not tuples: a run holds millions of them.
    answered: dict[str, array[float]] = field(default_factory=dict)
    sent: dict[str, array[float]] = field(default_factory=dict)
    counts: dict[str, array[int]] = field(default_factory=dict)

    def zone_points(self, zone: str, *, by_send: bool = False) -> list[tuple[float, int]]:
        times = (self.sent if by_send else self.answered).get(zone, array("d"))
        return list(zip(times, self.counts.get(zone, array("l")), strict=True))

    resent: Counter[str] = field(default_factory=Counter)  # transport errors, then re-sent
    backlog_max: int = 0
    late_sends: int = 0  # requests sent more than 100 ms after their slot


class Votes:
    """Batch bodies built just before sending, so clientTs is always a few seconds old."""

    def __init__(self, tenant: BenchTenant, zones: tuple[str, ...], seed: int) -> None:
        self.tenant = tenant
        self.zones = zones
        self.rng = random.Random(seed)
        self.n = 0

    def batch(self, size: int) -> tuple[bytes, list[str]]:
        rng, now = self.rng, datetime.now(UTC)
        stamps = [(now - timedelta(seconds=s)).isoformat() for s in (1, 2, 3, 5, 8)]
        items, zones = [], []
        for _ in range(size):
            kind = KINDS[self.n % len(KINDS)]
            self.n += 1
            zone = rng.choice(self.zones)
            item: dict[str, object] = {
                "voteUuid": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "buildingId": self.tenant.building_id,
                "zoneId": zone,
                "kind": kind,
                "value": rng.randint(-3, 3) if kind == "thermal" else rng.randint(1, 5),
                "clientTs": rng.choice(stamps),
                "deviceId": f"bench-device-{rng.randint(1, 500)}",
                "appVersion": "2.0.0-bench",
                "schemaVersion": 2,
            }
            if kind == "thermal":
                item["preference"] = rng.choice(("warmer", "no_change", "cooler"))
            items.append(item)
            zones.append(zone)
        return orjson.dumps({"items": items}), zones


def _tally(
    load: Load, status: int, payload: bytes, zones: list[str], sent: float, *, resent: bool
) -> None:
    """Count an answer. On a re-sent request, `duplicate` means the first attempt's vote was
    published (the gateway marks a vote only once Kafka confirmed it), so it counts as accepted."""
    answered = time.time()
    if status != 200:
        try:
            code = orjson.loads(payload).get("error", {}).get("code", "?")
        except orjson.JSONDecodeError:
            code = payload[:60].decode(errors="replace")
        load.failures[f"http_{status}:{code}"] += 1
        return
    per_zone: Counter[str] = Counter()
    for result in orjson.loads(payload)["results"]:
        load.statuses[result["status"]] += 1
        if result["status"] == "accepted" or (resent and result["status"] == "duplicate"):
            per_zone[zones[result["index"]]] += 1
        else:
            load.failures[f"{result['status']}:{result.get('error', {}).get('code', '-')}"] += 1
    for zone, n in per_zone.items():
        if zone not in load.counts:
            load.answered[zone], load.sent[zone], load.counts[zone] = (
                array("d"),
                array("d"),
                array("l"),
            )
        load.answered[zone].append(answered)
        load.sent[zone].append(sent)
        load.counts[zone].append(n)
    load.accepted += sum(per_zone.values())


async def offer(
    settings: Settings, tokens: list[str], votes: Votes, args: argparse.Namespace, load: Load
) -> None:
    """Open-loop load: one request slot every batch/rate seconds, `duration` seconds long."""
    host, port = settings.host, settings.gateway_port
    slots: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    interval = args.batch / args.rate
    loop = asyncio.get_running_loop()

    async def schedule() -> None:
        start = loop.time()
        i = 0
        while (due := start + i * interval) < start + args.duration:
            await asyncio.sleep(max(0.0, due - loop.time()))
            slots.put_nowait((i, due))
            load.backlog_max = max(load.backlog_max, slots.qsize())
            i += 1
        for _ in tokens:
            slots.put_nowait(None)

    async def connection(token: str) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        last_used = loop.time()
        try:
            while (slot := await slots.get()) is not None:
                if loop.time() - slot[1] > 0.1:
                    load.late_sends += 1
                body, zones = votes.batch(args.batch)
                request = http_request(host, port, BATCH_PATH, body, token)
                sent, started = time.time(), time.perf_counter()
                load.requests += 1
                answer = None
                for attempt in range(ATTEMPTS):
                    if loop.time() - last_used > IDLE_RECONNECT_S:
                        # uvicorn closes a keep-alive connection idle for 5 s: never race it.
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                    try:
                        writer.write(request)
                        answer = await read_response(reader)
                        break
                    except TRANSPORT_ERRORS as exc:
                        load.resent[f"{type(exc).__name__} (attempt {attempt + 1})"] += 1
                        writer.close()
                        reader, writer = await asyncio.open_connection(host, port)
                    finally:
                        last_used = loop.time()
                if answer is None:
                    load.failures[f"transport: no answer in {ATTEMPTS} attempts"] += 1
                    continue
                load.latencies_s.append(time.perf_counter() - started)
                _tally(load, *answer, zones, sent, resent=attempt > 0)
        finally:
            writer.close()

    await asyncio.gather(schedule(), *(connection(t) for t in tokens))
