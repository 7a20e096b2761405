"""votes.accepted → per-(zone, kind, minute) buckets → coalesced snapshots in Redis.

Each vote is applied to its bucket once (buckets remember voteUuids), so a vote
the processor re-emits after a crash changes nothing. Publishing runs on a
one-second timer that only *reads* tables (faust forbids table writes outside
stream iteration): at most one absolute snapshot per zone per second, plus a
republish of every active zone each minute as the windows slide.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from sbp.settings import get_settings
from schemas.codec import DecodeError
from sinks.live.redis_client import connect
from sinks.live.snapshot_writer import write_snapshots
from streams.app import accepted_votes, app, comfort_buckets, is_ready
from streams.clock import clock_from_env
from streams.counters import counters
from streams.dlq import dead_letter
from streams.serde import decode_with_retry
from streams.tables.comfort_buckets import (
    LONGEST_WINDOW_MIN,
    add_vote,
    bucket_key,
    bucket_minute,
    epoch_minute,
    split_bucket_key,
    zone_key,
    zone_windows,
)
from streams.tables.zone_activity import ZoneActivity

log = logging.getLogger(__name__)
clock = clock_from_env()
activity = ZoneActivity()
_state: dict[str, Any] = {"rebuilt": False, "redis": None}


@app.agent(accepted_votes)
async def aggregate_votes(stream: Any) -> None:
    async for event in stream.events():
        try:
            vote = await decode_with_retry(event.value)
        except DecodeError as exc:
            await dead_letter(event.message, exc.code, exc.message)
            continue
        zone = zone_key(vote["tenantId"], vote["buildingId"], vote["zoneId"])
        minute = bucket_minute(vote["clientTs"], vote["receivedAt"])
        key = bucket_key(zone, vote["kind"], minute).encode()
        updated = add_vote(comfort_buckets.get(key), vote)
        if updated is None:
            counters["aggregator_replayed"] += 1
        else:
            counters["aggregator_applied"] += 1
            comfort_buckets[key] = updated
        activity.touch(zone, vote["kind"], minute)


def snapshot(zone: str, kinds: list[str], now: datetime) -> dict[str, Any]:
    tenant_id, building_id, zone_id = zone.split("|")
    now_minute = epoch_minute(now)
    per_kind: dict[str, Any] = {}
    for kind in kinds:
        buckets = {}
        for minute in range(now_minute - LONGEST_WINDOW_MIN + 1, now_minute + 1):
            bucket = comfort_buckets.get(bucket_key(zone, kind, minute).encode())
            if bucket is not None:
                buckets[minute] = bucket
        per_kind[kind] = zone_windows(kind, buckets, now_minute)
    return {
        "type": "aggregate",
        "tenantId": tenant_id,
        "buildingId": building_id,
        "zoneId": zone_id,
        "asOf": now.isoformat(),
        "asOfMinute": now_minute,
        "kinds": per_kind,
    }


def _rebuild_activity(now_minute: int) -> None:
    """After a restart, find the zones whose buckets are still inside a window."""
    for raw_key in list(comfort_buckets.keys()):  # faust Table: keys() reads local stores
        zone, kind, minute = split_bucket_key(raw_key.decode())
        if minute > now_minute - LONGEST_WINDOW_MIN:
            activity.touch(zone, kind, minute)


def _redis() -> aioredis.Redis:
    if _state["redis"] is None:
        _state["redis"] = connect(get_settings().redis_url)
    client: aioredis.Redis = _state["redis"]
    return client


@app.timer(1.0)  # type: ignore[untyped-decorator]
async def publish_comfort() -> None:
    if not is_ready():
        return
    now = clock()
    now_minute = epoch_minute(now)
    if not _state["rebuilt"]:
        _rebuild_activity(now_minute)
        _state["rebuilt"] = True
    due = activity.due(now_minute)
    if not due:
        return
    snapshots = [snapshot(zone, kinds, now) for zone, kinds in due.items()]
    try:
        await write_snapshots(_redis(), snapshots)
    except Exception:
        # Redis is down: keep the zones dirty so the next tick retries them.
        log.exception("publishing %d snapshots failed; will retry", len(snapshots))
        activity.dirty.update(due)
