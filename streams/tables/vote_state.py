"""The vote stage's state for one input partition: keys, values and their expiry.

One table (`vote-state`) holds three kinds of key, all written to the changelog
partition of the votes.raw partition they belong to (votes.raw is keyed by
zone, so a zone's votes, its dedup entries and its buckets share a partition):

- `d|{tenant}|{voteUuid}`: a dedup entry, `{"o": offset, "x": expiry}`. The
  offset where the vote was first seen tells a replay of that record (re-emit)
  from a true duplicate (drop).
- `b|{tenant}|{building}|{zone}|{kind}|{minute}`: a live bucket. Its size does
  not grow with its votes: counts per value and preference, a bounded voter
  set, and `h`, the highest input offset applied. Votes of a bucket arrive in
  offset order on one partition, so a vote at an offset <= h is already in it.
- `o|{partition}`: the partition's progress, the last input offset whose
  effects (state, emits, dead letters) are durable in Kafka.

Every value carries its expiry (`x`, epoch seconds) except progress, which is
one key per partition. Values are JSON (orjson) bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from streams.tables.comfort_buckets import VOTER_KEY_CHARS

DEDUP_PREFIX = b"d|"
BUCKET_PREFIX = b"b|"
PROGRESS_PREFIX = b"o|"
# Unique voters are exact up to this many per bucket (about 10 KB); past it the
# bucket counts further voters as `uo` (overflow) and windows say so.
VOTER_CAP = 512


def dedup_state_key(tenant_id: str, vote_uuid: str) -> bytes:
    return f"d|{tenant_id}|{vote_uuid}".encode()


def bucket_state_key(zone: str, kind: str, minute: int) -> bytes:
    return f"b|{zone}|{kind}|{minute}".encode()


def split_bucket_state_key(key: bytes) -> tuple[str, str, int]:
    """(zone key, kind, minute) of a bucket key."""
    body = key[len(BUCKET_PREFIX) :].decode()
    zone, kind, minute = body.rsplit("|", 2)
    return zone, kind, int(minute)


def progress_key(partition: int) -> bytes:
    return f"o|{partition}".encode()


def encode(value: Mapping[str, Any]) -> bytes:
    return orjson.dumps(value)


def decode(raw: bytes | None) -> dict[str, Any] | None:
    if raw is None:
        return None
    value: dict[str, Any] = orjson.loads(raw)
    return value


# --- dedup -----------------------------------------------------------------


def dedup_entry(offset: int, expires_at: int) -> dict[str, int]:
    return {"o": offset, "x": expires_at}


def is_replay(entry: Mapping[str, Any], offset: int) -> bool:
    """The entry was written by this very record: processing it again re-emits."""
    return bool(entry.get("o") == offset)


# --- buckets ---------------------------------------------------------------


def empty_bucket(expires_at: int) -> dict[str, Any]:
    return {"v": {}, "p": {}, "u": [], "uo": 0, "r": 0, "h": -1, "x": expires_at}


@dataclass
class BucketUpdate:
    """A bucket being updated by one batch; `applied` counts votes new to it."""

    value: dict[str, Any]
    voters: set[str] = field(default_factory=set)
    applied: int = 0
    already: int = 0

    @classmethod
    def start(cls, stored: Mapping[str, Any] | None, expires_at: int) -> BucketUpdate:
        if stored is None:
            value = empty_bucket(expires_at)
        else:
            value = {k: (v.copy() if isinstance(v, dict | list) else v) for k, v in stored.items()}
        return cls(value=value, voters=set(value["u"]))

    @classmethod
    def take(cls, fresh: dict[str, Any] | None, expires_at: int) -> BucketUpdate:
        """Like `start`, over a bucket nobody else holds (just decoded): no copy."""
        if fresh is None:
            return cls.start(None, expires_at)
        return cls(value=fresh, voters=set(fresh["u"]))

    def add(self, offset: int, vote: Mapping[str, Any]) -> bool:
        """Apply a vote read at `offset`; False if the bucket already holds it."""
        bucket = self.value
        if offset <= bucket["h"]:
            self.already += 1
            return False
        bucket["h"] = offset
        value = str(vote["value"])
        bucket["v"][value] = bucket["v"].get(value, 0) + 1
        preference = vote.get("preference")
        if preference:
            bucket["p"][preference] = bucket["p"].get(preference, 0) + 1
        voter = vote["userRef"][:VOTER_KEY_CHARS]
        if voter not in self.voters:
            if len(self.voters) < VOTER_CAP:
                self.voters.add(voter)
                bucket["u"].append(voter)
            else:
                bucket["uo"] += 1
        if vote.get("remote"):
            bucket["r"] += 1
        self.applied += 1
        return True


# --- expiry ----------------------------------------------------------------


def dedup_expiry(client_ts_s: float, ttl_s: int) -> int:
    return int(client_ts_s) + ttl_s


def bucket_expiry(minute: int, ttl_s: int) -> int:
    return minute * 60 + ttl_s


def is_live_minute(minute: int, now_s: float, ttl_s: int) -> bool:
    """Whether a vote of this minute still belongs in a live bucket."""
    return bucket_expiry(minute, ttl_s) > now_s


def expired_keys(items: Iterable[tuple[bytes, bytes]], now_s: float) -> list[bytes]:
    """Dedup and bucket keys whose expiry has passed; nothing else is touched.

    Progress never expires, and the databases also hold faust's own bookkeeping
    (its persisted changelog offset), which is not ours to delete.
    """
    gone = []
    for key, raw in items:
        if not (key.startswith(DEDUP_PREFIX) or key.startswith(BUCKET_PREFIX)):
            continue
        value = decode(raw)
        if value is not None and value.get("x", now_s + 1) <= now_s:
            gone.append(key)
    return gone
