"""Per-(zone, kind, minute) bucket partials, and the window metrics summed from them.

A bucket (built by `BucketUpdate` in streams/tables/vote_state.py) holds the
counts per value and per preference, the refs of up to VOTER_CAP voters, and
how many votes were remote. Windows (5, 15, 60 minutes) end at the current
minute of an injectable clock and are derived by summing buckets, so a vote
costs one table write, not one per window; streams/tables/live_windows.py does
the summing for the live publisher.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
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


# Unique voters are counted by a 64-bit prefix of the userRef: collisions are
# negligible at a bucket's scale, and the full 256-bit refs would make every
# bucket (and every changelog record of it) several times larger.
VOTER_KEY_CHARS = 16


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


@dataclass
class BucketSums:
    """The additive part of some buckets: counts per value and preference, remote votes.

    Every field is a sum of ints, so the result does not depend on the order
    buckets are added or taken away in. Unique voters are not additive (one
    voter can vote in several minutes): whoever sums buckets keeps their voter
    set beside this and passes its size to `stats`.
    """

    distribution: dict[int, int] = field(default_factory=dict)
    preferences: dict[str, int] = field(default_factory=dict)
    remote: int = 0

    def add(self, bucket: Mapping[str, Any]) -> None:
        self._add(bucket, 1)

    def subtract(self, bucket: Mapping[str, Any]) -> None:
        """Take away a bucket added before. A value or preference whose count
        drops to 0 keeps its key: adding a bucket that has the key restores the
        sum exactly, and callers rely on that (see live_windows._voters_gained)."""
        self._add(bucket, -1)

    def _add(self, bucket: Mapping[str, Any], sign: int) -> None:
        distribution = self.distribution
        for value, count in bucket["v"].items():
            key = int(value)
            distribution[key] = distribution.get(key, 0) + sign * count
        preferences = self.preferences
        for pref, count in bucket["p"].items():
            preferences[pref] = preferences.get(pref, 0) + sign * count
        self.remote += sign * bucket["r"]

    def copy(self) -> BucketSums:
        return BucketSums(dict(self.distribution), dict(self.preferences), self.remote)

    def stats(self, kind: str, unique_voters: int) -> WindowStats:
        n = sum(self.distribution.values())
        if n == 0:
            return WindowStats(0, None, {}, None, None, {}, 0, None)
        total = sum(v * c for v, c in self.distribution.items())
        unhappy = sum(c for v, c in self.distribution.items() if is_dissatisfied(kind, v))
        return WindowStats(
            n=n,
            mean=total / n,
            # Copies: the stats must not change when these sums do afterwards.
            distribution=dict(self.distribution),
            pct_dissatisfied=100.0 * unhappy / n,
            dissatisfied_ci95=tuple(100.0 * x for x in wilson_interval(unhappy, n)),  # type: ignore[arg-type]
            preferences=dict(self.preferences),
            unique_voters=unique_voters,
            remote_share=self.remote / n,
        )


def window_minutes(now_minute: int, length: int) -> range:
    """The `length` minutes ending with (and including) the current minute."""
    return range(now_minute - length + 1, now_minute + 1)
