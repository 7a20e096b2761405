"""Shared pieces of the fault drills: a steady vote load, and what the pipeline shows.

A drill produces a known set of votes at a steady rate while it kills, moves
or restarts things, then checks that PostgreSQL and the published windows
equal the generator exactly.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

import httpx

from devstack import workers
from devstack.raw_votes import KINDS, RawVoteProducer
from sbp.settings import Settings
from tests.integration.observe import vote_count, vote_rows, wait_for, window, zone_snapshot


class SteadyLoad:
    """Produces `votes` onto votes.raw at `rate` per second, in a thread."""

    def __init__(self, settings: Settings, votes: Sequence[dict[str, Any]], rate: int) -> None:
        self.settings = settings
        self.votes = votes
        self.rate = rate
        self.sent = 0
        self._thread = threading.Thread(target=self._run, name="steady-load", daemon=True)
        self.error: BaseException | None = None

    def _run(self) -> None:
        try:
            with RawVoteProducer(self.settings) as producer:
                start = time.monotonic()
                step = max(self.rate // 20, 1)  # 20 slices a second
                for i in range(0, len(self.votes), step):
                    producer.produce(self.votes[i : i + step])
                    self.sent = min(i + step, len(self.votes))
                    due = start + self.sent / self.rate
                    time.sleep(max(0.0, due - time.monotonic()))
        except BaseException as exc:  # surfaced by join()
            self.error = exc

    def start(self) -> SteadyLoad:
        self._thread.start()
        return self

    def wait_sent(self, fraction: float, timeout: float = 120.0) -> None:
        wait_for(
            lambda: self.sent >= fraction * len(self.votes) or self.error is not None,
            timeout,
            f"{fraction:.0%} of the load sent",
        )

    def join(self, timeout: float = 300.0) -> None:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the load did not finish"
        if self.error is not None:
            raise self.error


def expected_windows(votes: Sequence[dict[str, Any]]) -> dict[tuple[str, str], dict[str, int]]:
    expected: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for v in votes:
        expected[(v["zoneId"], v["kind"])][str(v["value"])] += 1
    return {key: dict(sorted(c.items())) for key, c in expected.items()}


def published_windows(
    settings: Settings, tenant_id: str, building_id: str, zones: Sequence[str]
) -> dict[tuple[str, str], dict[str, int]]:
    seen = {}
    for zone in zones:
        snap = zone_snapshot(settings, tenant_id, building_id, zone)
        for kind in KINDS:
            stats = window(snap, kind, "60m")
            if stats and stats["n"]:
                seen[(zone, kind)] = stats["distribution"]
    return seen


def assert_exact(
    settings: Settings,
    tenant_id: str,
    building_id: str,
    zones: Sequence[str],
    votes: Sequence[dict[str, Any]],
    timeout: float = 240.0,
) -> None:
    """PostgreSQL holds every vote once, and the 60-minute windows count each once."""
    total = len(votes)
    wait_for(lambda: vote_count(settings, tenant_id) >= total, timeout, f"{total} rows")
    rows = vote_rows(settings, tenant_id)
    assert len(rows) == total
    assert sorted((r[0], r[1], r[2], r[3]) for r in rows) == sorted(
        (str(v["voteUuid"]), v["zoneId"], v["kind"], v["value"]) for v in votes
    )
    want = expected_windows(votes)

    def windows_settled() -> dict[tuple[str, str], dict[str, int]] | None:
        seen = published_windows(settings, tenant_id, building_id, zones)
        return seen if seen == want else None

    try:
        wait_for(windows_settled, 120, "windows equal to the generator")
    except AssertionError:
        seen = published_windows(settings, tenant_id, building_id, zones)
        counted = sum(sum(d.values()) for d in seen.values())
        raise AssertionError(f"windows count {counted} votes, expected {total}: {seen}") from None


def stats_of(settings: Settings, instance: int) -> dict[str, Any]:
    url = f"http://{settings.host}:{settings.worker_port(instance)}/stats"
    stats: dict[str, Any] = httpx.get(url, timeout=5).json()
    return stats


def stats_of_all(settings: Settings) -> dict[int, dict[str, Any]]:
    return {i: stats_of(settings, i) for i in workers.running(settings)}


def summed(stats: dict[int, dict[str, Any]], *names: str) -> int:
    return sum(int(s.get(n, 0)) for s in stats.values() for n in names)
