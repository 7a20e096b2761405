"""The worker's /stats counters, read around a run to see what it did (and what else it did).

The counters are per process and reset on restart, so a counter that goes
backwards between two reads means the worker restarted mid-run.
"""

from __future__ import annotations

import time

import httpx

from sbp.settings import Settings


def worker_stats(settings: Settings) -> dict[str, int]:
    url = f"http://{settings.host}:{settings.worker_web_port}/stats"
    stats: dict[str, int] = httpx.get(url, timeout=5).json()
    return stats


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(before.keys() | after.keys())}


def _processed(stats: dict[str, int]) -> int:
    return sum(v for k, v in stats.items() if k.startswith("processor_"))


def wait_until_quiet(settings: Settings, max_rate: float = 50.0, limit_s: float = 60.0) -> str:
    """Wait until the worker takes in fewer than `max_rate` votes/s, so a run does not
    start behind another run's backlog. Returns a line describing the background load."""
    started = time.monotonic()
    before = _processed(worker_stats(settings))
    while True:
        time.sleep(1.0)
        now = _processed(worker_stats(settings))
        rate, before = float(now - before), now
        waited = time.monotonic() - started
        if rate < max_rate:
            return (
                f"worker background load before the run: {rate:.0f} votes/s (waited {waited:.0f}s)"
            )
        if waited > limit_s:
            return f"warning: worker still busy ({rate:.0f} votes/s) after {waited:.0f}s"
