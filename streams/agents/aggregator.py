"""votes.accepted → per-(zone, kind, minute) buckets → coalesced snapshots in Redis,
and the same batches into PostgreSQL (streams/agents/vote_sink.py).

Each vote is applied to its bucket once (buckets remember voteUuids), so a vote
the processor re-emits after a crash changes nothing. Publishing runs on a
one-second timer that only *reads* tables (faust forbids table writes outside
stream iteration): at most one absolute snapshot per zone per second, plus a
republish of every active zone each minute as the windows slide.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import redis.asyncio as aioredis

from sbp.settings import get_settings
from schemas.codec import DecodeError
from sinks.live.redis_client import connect
from sinks.live.snapshot_writer import write_snapshots
from streams.agents.vote_sink import store_votes
from streams.app import accepted_votes, app, comfort_buckets, is_ready
from streams.batch_guard import complete_batch
from streams.clock import clock_from_env
from streams.counters import counters
from streams.dlq import dead_letter
from streams.serde import decode_with_retry
from streams.table_writes import within_partition_of
from streams.tables.comfort_buckets import (
    LONGEST_WINDOW_MIN,
    add_votes,
    bucket_key,
    bucket_minute,
    epoch_minute,
    split_bucket_key,
    zone_key,
    zone_windows,
)
from streams.tables.vote_migration import accepted_shape_error
from streams.tables.zone_activity import ZoneActivity

log = logging.getLogger(__name__)
clock = clock_from_env()
activity = ZoneActivity()
_state: dict[str, Any] = {"rebuilt": False, "redis": None}


BATCH_MAX = 1000
BATCH_WITHIN_S = 0.2


async def _aggregate(events: Sequence[Any]) -> None:
    by_bucket: dict[bytes, tuple[Any, list[dict[str, Any]]]] = {}
    to_store: list[tuple[dict[str, Any], Any]] = []
    for event in events:
        try:
            vote = await decode_with_retry(event.value)
        except DecodeError as exc:
            await dead_letter(event.message, exc.code, exc.message)
            continue
        problem = accepted_shape_error(vote)
        if problem is not None:
            await dead_letter(event.message, "wrong_schema", problem)
            continue
        zone = zone_key(vote["tenantId"], vote["buildingId"], vote["zoneId"])
        minute = bucket_minute(vote["clientTs"], vote["receivedAt"])
        key = bucket_key(zone, vote["kind"], minute).encode()
        # Every vote of a bucket comes from one partition (keyed by zone), so any
        # of its events names the right changelog partition.
        by_bucket.setdefault(key, (event, []))[1].append(vote)
        activity.touch(zone, vote["kind"], minute)
        to_store.append((vote, event.message))
    for key, (event, votes) in by_bucket.items():
        existing = comfort_buckets.get(key)
        updated, replayed = add_votes(existing, votes)
        counters["aggregator_replayed"] += replayed
        counters["aggregator_applied"] += len(votes) - replayed
        # Written even when every vote was a replay: after a SIGKILL the local
        # store may hold a bucket whose changelog record was never sent.
        with within_partition_of(event):
            comfort_buckets[key] = updated if updated is not None else existing
    # The same batch into PostgreSQL, before the batch may be acked.
    await store_votes(to_store)


@app.agent(accepted_votes)
async def aggregate_votes(stream: Any) -> None:
    # Batches, so a bucket hit by many votes is written (and its changelog record
    # sent) once per batch instead of once per vote.
    async for events in stream.take_events(BATCH_MAX, within=BATCH_WITHIN_S):
        await complete_batch(_aggregate, events)


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
    try:
        await _publish_due()
    except Exception:
        # A timer that raises takes the whole worker down with it; publishing is
        # retried on the next tick instead (the zones stay dirty).
        log.exception("publishing comfort snapshots failed")


async def _publish_due() -> None:
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
