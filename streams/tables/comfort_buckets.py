"""Per-(zone, kind, minute) bucket partials and the sliding windows summed from them.

A bucket holds counts per value, preference counts, the voters' refs and the
voteUuids it applied. Holding the ids makes `add_vote` idempotent: a vote the
processor re-emits after a crash is recognised and ignored, so every window is
exact under at-least-once delivery. Windows (5, 15, 60 minutes) end at the
current minute of an injectable clock and are derived by summing buckets, so a
vote costs one table write, not one per window.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

WINDOWS_MIN = (5, 15, 60)
LONGEST_WINDOW_MIN = max(WINDOWS_MIN)
_Z95 = 1.959963984540054


def epoch_minute(ts: datetime) -> int:
    return int(ts.timestamp()) // 60


def bucket_minute(client_ts: datetime, received_at: datetime) -> int:
    """Buckets follow clientTs, clamped so a fast device clock cannot reach the future."""
    return epoch_minute(min(client_ts, received_at))


def zone_key(tenant_id: str, building_id: str, zone_id: str) -> str:
    return f"{tenant_id}|{building_id}|{zone_id}"


def bucket_key(zone: str, kind: str, minute: int) -> str:
    return f"{zone}|{kind}|{minute}"


def split_bucket_key(key: str) -> tuple[str, str, int]:
    zone, kind, minute = key.rsplit("|", 2)
    return zone, kind, int(minute)


# Unique voters are counted by a 64-bit prefix of the userRef: collisions are
# negligible at a bucket's scale, and the full 256-bit refs would make every
# bucket (and every changelog record of it) several times larger.
VOTER_KEY_CHARS = 16


def empty_bucket() -> dict[str, Any]:
    return {"v": {}, "p": {}, "u": [], "ids": [], "r": 0}


def add_votes(
    bucket: Mapping[str, Any] | None, votes: Iterable[Mapping[str, Any]]
) -> tuple[dict[str, Any] | None, int]:
    """The bucket with `votes` applied, and how many were already in it (replays).

    Returns None for the bucket when nothing new was applied. Copies the bucket
    once however many votes there are.
    """
    current: dict[str, Any] = (
        empty_bucket()
        if bucket is None
        else {k: (v.copy() if isinstance(v, dict | list) else v) for k, v in bucket.items()}
    )
    # The codec decodes a uuid logical type to uuid.UUID while stored buckets hold
    # strings: compare as strings, or a replayed vote would count twice.
    seen = set(current["ids"])
    voters = set(current["u"])
    applied = replayed = 0
    for vote in votes:
        vote_id = str(vote["voteUuid"])
        if vote_id in seen:
            replayed += 1
            continue
        seen.add(vote_id)
        current["ids"].append(vote_id)
        value = str(vote["value"])
        current["v"][value] = current["v"].get(value, 0) + 1
        if vote.get("preference"):
            current["p"][vote["preference"]] = current["p"].get(vote["preference"], 0) + 1
        voter = vote["userRef"][:VOTER_KEY_CHARS]
        if voter not in voters:
            voters.add(voter)
            current["u"].append(voter)
        if vote.get("remote"):
            current["r"] += 1
        applied += 1
    return (current if applied else None), replayed


def add_vote(bucket: Mapping[str, Any] | None, vote: Mapping[str, Any]) -> dict[str, Any] | None:
    """The bucket with `vote` applied, or None when it already holds that voteUuid."""
    updated, _replayed = add_votes(bucket, [vote])
    return updated


def is_dissatisfied(kind: str, value: int) -> bool:
    return abs(value) >= 2 if kind == "thermal" else value <= 2


def wilson_interval(successes: int, n: int) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    denom = 1 + _Z95**2 / n
    centre = (p + _Z95**2 / (2 * n)) / denom
    half = _Z95 * math.sqrt(p * (1 - p) / n + _Z95**2 / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class WindowStats:
    n: int
    mean: float | None
    distribution: dict[int, int]
    pct_dissatisfied: float | None
    dissatisfied_ci95: tuple[float, float] | None
    preferences: dict[str, int]
    unique_voters: int
    remote_share: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "mean": self.mean,
            "distribution": {str(k): v for k, v in sorted(self.distribution.items())},
            "pctDissatisfied": self.pct_dissatisfied,
            "dissatisfiedCi95": list(self.dissatisfied_ci95) if self.dissatisfied_ci95 else None,
            "preferences": dict(sorted(self.preferences.items())),
            "uniqueVoters": self.unique_voters,
            "remoteShare": self.remote_share,
        }


def summarize(kind: str, buckets: Iterable[Mapping[str, Any]]) -> WindowStats:
    distribution: dict[int, int] = {}
    preferences: dict[str, int] = {}
    voters: set[str] = set()
    remote = 0
    for bucket in buckets:
        for value, count in bucket["v"].items():
            distribution[int(value)] = distribution.get(int(value), 0) + count
        for pref, count in bucket["p"].items():
            preferences[pref] = preferences.get(pref, 0) + count
        voters.update(bucket["u"])
        remote += bucket["r"]
    n = sum(distribution.values())
    if n == 0:
        return WindowStats(0, None, {}, None, None, {}, 0, None)
    total = sum(v * c for v, c in distribution.items())
    unhappy = sum(c for v, c in distribution.items() if is_dissatisfied(kind, v))
    return WindowStats(
        n=n,
        mean=total / n,
        distribution=distribution,
        pct_dissatisfied=100.0 * unhappy / n,
        dissatisfied_ci95=tuple(100.0 * x for x in wilson_interval(unhappy, n)),  # type: ignore[arg-type]
        preferences=preferences,
        unique_voters=len(voters),
        remote_share=remote / n,
    )


def window_minutes(now_minute: int, length: int) -> range:
    """The `length` minutes ending with (and including) the current minute."""
    return range(now_minute - length + 1, now_minute + 1)


def zone_windows(
    kind: str, buckets_by_minute: Mapping[int, Mapping[str, Any]], now_minute: int
) -> dict[str, dict[str, Any]]:
    return {
        f"{length}m": summarize(
            kind,
            (
                buckets_by_minute[m]
                for m in window_minutes(now_minute, length)
                if m in buckets_by_minute
            ),
        ).to_json()
        for length in WINDOWS_MIN
    }
