"""What one batch of a votes.raw partition does to the vote state: pure logic, no I/O.

Input: the partition's records in offset order, each already decoded and
migrated (or failed with a DLQ reason), and the stored values of the keys they
touch. Output: the votes to emit to votes.accepted, the dead letters, and every
state key to write, each once however many votes hit it.

Exactly once under replay (records after the durable progress are processed
again after a crash or a partition move):

- a vote whose dedup entry names this very offset is a replay: it is emitted
  again (consumers are idempotent by voteUuid) and its entry rewritten, so a
  changelog record lost in the crash is restored;
- a vote whose entry names another offset is a duplicate: dropped;
- a bucket applies a vote only if its offset is above the bucket's high-water
  offset, and every bucket the batch touches is rewritten (same reason).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from streams.tables.comfort_buckets import bucket_minute, zone_key
from streams.tables.vote_state import (
    BucketUpdate,
    bucket_expiry,
    bucket_state_key,
    decode,
    dedup_entry,
    dedup_expiry,
    dedup_state_key,
    encode,
    is_live_minute,
    is_replay,
)


@dataclass(frozen=True)
class Item:
    """One input record: the accepted-vote candidate, or why it failed."""

    offset: int
    key: bytes | None
    vote: dict[str, Any] | None
    error_code: str | None = None
    error_message: str | None = None


@dataclass(frozen=True)
class Failure:
    offset: int
    code: str
    message: str


@dataclass
class Plan:
    emits: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    puts: dict[bytes, bytes] = field(default_factory=dict)
    # Bucket key → its new value (decoded), for the live publisher's cache.
    buckets: dict[bytes, dict[str, Any]] = field(default_factory=dict)
    # Zone key → `receivedAt` (epoch s) of each vote newly applied to a live bucket:
    # the start of its ingest→publish latency, ended when the zone is published.
    live_received: dict[str, list[float]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Horizons:
    dedup_ttl_s: int
    live_bucket_ttl_s: int


def _epoch_s(ts: datetime) -> float:
    return ts.timestamp()


def plan_batch(
    items: Sequence[Item],
    stored: Callable[[list[bytes]], list[bytes | None]],
    now_s: float,
    horizons: Horizons,
) -> Plan:
    plan = Plan()
    candidates: list[tuple[Item, dict[str, Any], bytes]] = []
    for item in items:
        if item.vote is None:
            plan.failures.append(
                Failure(item.offset, item.error_code or "invalid", item.error_message or "")
            )
            continue
        vote = item.vote
        zone = zone_key(vote["tenantId"], vote["buildingId"], vote["zoneId"])
        if item.key != zone.encode():
            # The state is only right when a zone's votes all land on one partition.
            plan.failures.append(Failure(item.offset, "wrong_key", f"key must be {zone!r}"))
            continue
        candidates.append((item, vote, dedup_state_key(vote["tenantId"], vote["voteUuid"])))

    dedup_keys = list(dict.fromkeys(k for _i, _v, k in candidates))
    entries = dict(zip(dedup_keys, stored(dedup_keys), strict=True))
    seen_now: dict[bytes, int] = {}
    accepted: list[tuple[Item, dict[str, Any]]] = []
    for item, vote, key in candidates:
        if key in seen_now:
            plan.counts["duplicate"] += 1
            continue
        entry = decode(entries[key])
        if entry is not None and not is_replay(entry, item.offset):
            plan.counts["duplicate"] += 1
            continue
        plan.counts["replay" if entry is not None else "first"] += 1
        seen_now[key] = item.offset
        expiry = dedup_expiry(_epoch_s(vote["clientTs"]), horizons.dedup_ttl_s)
        plan.puts[key] = encode(dedup_entry(item.offset, expiry))
        plan.emits.append((item.offset, vote))
        accepted.append((item, vote))

    by_bucket: dict[bytes, list[tuple[int, dict[str, Any]]]] = {}
    zone_of: dict[bytes, str] = {}
    for item, vote in accepted:
        minute = bucket_minute(vote["clientTs"], vote["receivedAt"])
        if not is_live_minute(minute, now_s, horizons.live_bucket_ttl_s):
            # Too old for any live window: only the history (PostgreSQL) counts it.
            plan.counts["not_live"] += 1
            continue
        zone = zone_key(vote["tenantId"], vote["buildingId"], vote["zoneId"])
        key = bucket_state_key(zone, vote["kind"], minute)
        by_bucket.setdefault(key, []).append((item.offset, vote))
        zone_of[key] = zone
    bucket_keys = list(by_bucket)
    for key, raw in zip(bucket_keys, stored(bucket_keys), strict=True):
        minute = int(key.rsplit(b"|", 1)[1])
        # Decoded just now, so the update may change it in place.
        update = BucketUpdate.take(decode(raw), bucket_expiry(minute, horizons.live_bucket_ttl_s))
        received: list[float] | None = None
        for offset, vote in by_bucket[key]:
            if update.add(offset, vote):
                if received is None:
                    received = plan.live_received.setdefault(zone_of[key], [])
                received.append(_epoch_s(vote["receivedAt"]))
        plan.counts["bucket_applied"] += update.applied
        plan.counts["bucket_already"] += update.already
        plan.puts[key] = encode(update.value)
        plan.buckets[key] = update.value
    return plan
