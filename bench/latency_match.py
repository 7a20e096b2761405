"""Ingest→live latency from counts: when did a zone's published aggregate first include vote k?

The live aggregate carries no vote ids, only counts: a zone's 60-minute window
`n` (summed over kinds) is the number of its votes applied so far, and it only
grows while every vote of the run stays inside the window. The gateway's
answers give, per zone, the times at which votes were accepted. Pairing the
k-th accepted vote with the first published aggregate whose count reaches k
gives one latency per vote: the horizontal distance between the zone's
"accepted" and "published" cumulative curves.

This is exact when a zone's votes are applied in the order they were
accepted. They nearly are: a zone is one partition, appended to in the order
the gateway's produces were acknowledged, and a vote is acknowledged before
its answer is sent. Two requests answered close together can swap places,
which moves individual latencies by about the request latency, never the
distribution's shape.

Everything here is pure: times are plain floats (seconds), counts ints.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

# (time, how many) — for accepted votes, `how many` votes accepted at that time;
# for observations, the count the published aggregate showed at that time.
Point = tuple[float, int]


@dataclass(frozen=True)
class Matched:
    latencies: list[tuple[float, int]]  # (seconds, how many votes had it)
    unmatched: int  # accepted votes no observation ever reached
    # When each entry of `latencies` was observed (its votes became visible).
    seen_at: list[float] = field(default_factory=list)

    @property
    def votes(self) -> int:
        return sum(n for _s, n in self.latencies)


def match(accepted: Sequence[Point], observed: Sequence[Point]) -> Matched:
    """Latency of every accepted vote of one zone; both inputs ascending by time."""
    latencies: list[tuple[float, int]] = []
    seen_at: list[float] = []
    obs = iter(_rising(observed))
    current: Point | None = next(obs, None)
    k = 0  # votes matched so far
    unmatched = 0
    for at, count in accepted:
        left = count
        while left:
            while current is not None and current[1] <= k:
                current = next(obs, None)
            if current is None:
                unmatched += left
                break
            # Votes k+1 .. min(k+left, current count) all appear at the same observation.
            take = min(left, current[1] - k)
            latencies.append((current[0] - at, take))
            seen_at.append(current[0])
            k += take
            left -= take
    return Matched(latencies, unmatched, seen_at)


def _rising(observed: Iterable[Point]) -> list[Point]:
    """Only the observations where the count rose above every earlier one."""
    best = 0
    rising = []
    for at, count in observed:
        if count > best:
            rising.append((at, count))
            best = count
    return rising


def merge(parts: Iterable[Matched]) -> Matched:
    latencies: list[tuple[float, int]] = []
    seen_at: list[float] = []
    unmatched = 0
    for part in parts:
        latencies.extend(part.latencies)
        seen_at.extend(part.seen_at)
        unmatched += part.unmatched
    return Matched(latencies, unmatched, seen_at)


def split_by(matched: Matched, inside: Callable[[float], bool]) -> tuple[Matched, Matched]:
    """(entries observed when `inside(time)` holds, the others); unmatched go to neither."""
    parts: tuple[Matched, Matched] = (Matched([], 0), Matched([], 0))
    for latency, at in zip(matched.latencies, matched.seen_at, strict=True):
        part = parts[0] if inside(at) else parts[1]
        part.latencies.append(latency)
        part.seen_at.append(at)
    return parts


def weighted_percentiles(
    values: Sequence[tuple[float, int]], pcts: Sequence[float]
) -> dict[float, float]:
    """Nearest-rank percentiles of values that each stand for `weight` observations."""
    ordered = sorted(values)
    total = sum(w for _v, w in ordered)
    if total == 0:
        return {p: math.nan for p in pcts}
    out: dict[float, float] = {}
    for pct in sorted(pcts):
        rank = max(1, math.ceil(pct / 100 * total))
        seen = 0
        for value, weight in ordered:
            seen += weight
            if seen >= rank:
                out[pct] = value
                break
    return out


def slope(points: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of y over x (0 for fewer than two distinct x)."""
    if len(points) < 2:
        return 0.0
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    var = sum((x - mean_x) ** 2 for x, _ in points)
    if var == 0:
        return 0.0
    return sum((x - mean_x) * (y - mean_y) for x, y in points) / var
