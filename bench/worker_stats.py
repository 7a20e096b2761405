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


def _work_done(stats: dict[str, int]) -> int:
    """Records handled by any stage: the processor, the aggregator and the sink."""
    return sum(stats.values())


def stage_progress(before: dict[str, int], settings: Settings) -> str:
    """How far each stage got since `before`: shows which one is behind."""
    d = delta(before, worker_stats(settings))
    processed = d.get("processor_first", 0) + d.get("processor_replay", 0)
    return (
        f"processed {processed:>7}  aggregated {d.get('aggregator_applied', 0):>7}  "
        f"sunk {d.get('sink_inserted', 0):>7}"
    )


def wait_until_quiet(
    settings: Settings, max_rate: float = 20.0, quiet_s: int = 3, limit_s: float = 120.0
) -> str:
    """Wait until the worker's stages together handle fewer than `max_rate` records/s for
    `quiet_s` seconds in a row, so a run does not start behind another run's backlog (the
    stages can pause for a second mid-backlog). Returns a line describing that load."""
    started = time.monotonic()
    before = _work_done(worker_stats(settings))
    quiet = 0
    while True:
        time.sleep(1.0)
        now = _work_done(worker_stats(settings))
        rate, before = float(now - before), now
        quiet = quiet + 1 if rate < max_rate else 0
        waited = time.monotonic() - started
        if quiet >= quiet_s:
            return f"worker load before the run: {rate:.0f} records/s (waited {waited:.0f}s)"
        if waited > limit_s:
            return f"warning: worker still busy ({rate:.0f} records/s) after {waited:.0f}s"
