"""The vote stage's and the PostgreSQL sink's /stats counters, read around a run.

Each vote-stage worker serves its own counters (instance i on
`worker_web_port + i - 1`); the sink serves its own on `sink_web_port`. The
counters are per process and reset on restart, so a counter that goes
backwards between two reads means a process restarted mid-run.

Vote-stage counters used here: `first` (a vote seen for the first time and
emitted), `replay` (emitted again after a crash or a seek back), `duplicate`
(judged a duplicate, not emitted) and `emitted` (first + replay). Sink:
`inserted` (new rows), `replayed` (rows already there), `records`.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter

import httpx

from devstack.python_services import SINK, worker
from devstack.workers import running
from sbp.settings import Settings


def _numbers(payload: dict[str, object]) -> dict[str, int]:
    """The integer counters of a /stats answer (lists and flags are left out)."""
    return {k: v for k, v in payload.items() if isinstance(v, int) and not isinstance(v, bool)}


def worker_stats(settings: Settings, instance: int = 1) -> dict[str, int]:
    url = f"http://{settings.host}:{settings.worker_port(instance)}/stats"
    return _numbers(httpx.get(url, timeout=5).json())


def all_workers_stats(settings: Settings) -> dict[str, int]:
    """The counters summed over every running worker (a rebalance moves work between them)."""
    total: Counter[str] = Counter()
    for instance in running(settings):
        total.update(worker_stats(settings, instance))
    return dict(total)


def sink_stats(settings: Settings) -> dict[str, int]:
    url = f"http://{settings.host}:{settings.sink_web_port}/stats"
    return _numbers(httpx.get(url, timeout=5).json())


def delta(before: dict[str, int], after: dict[str, int]) -> dict[str, int]:
    return {k: after.get(k, 0) - before.get(k, 0) for k in sorted(before.keys() | after.keys())}


def stage_progress(workers_before: dict[str, int], sink_before: dict[str, int], s: Settings) -> str:
    """How far the vote stage and the sink got since the `before` readings."""
    w = delta(workers_before, all_workers_stats(s))
    k = delta(sink_before, sink_stats(s))
    judged = w.get("first", 0) + w.get("replay", 0) + w.get("duplicate", 0)
    return (
        f"judged {judged:>8}  emitted {w.get('emitted', 0):>8}  "
        f"stored {k.get('inserted', 0):>8} (+{k.get('replayed', 0)} replayed)"
    )


def _work_done(settings: Settings) -> int:
    """Records judged by the vote stage plus records read by the sink, so far."""
    w = all_workers_stats(settings)
    work = w.get("first", 0) + w.get("replay", 0) + w.get("duplicate", 0)
    # No sink running: only the stage's quiet matters.
    with contextlib.suppress(httpx.HTTPError):
        work += sink_stats(settings).get("records", 0)
    return work


def wait_until_quiet(
    settings: Settings, max_rate: float = 20.0, quiet_s: int = 3, limit_s: float = 120.0
) -> str:
    """Wait until the stage and the sink together handle fewer than `max_rate` records/s for
    `quiet_s` seconds in a row, so a run does not start behind another run's backlog (a
    stage can pause for a second mid-backlog). Returns a line describing that load."""
    started = time.monotonic()
    before = _work_done(settings)
    quiet = 0
    while True:
        time.sleep(1.0)
        now = _work_done(settings)
        rate, before = float(now - before), now
        quiet = quiet + 1 if rate < max_rate else 0
        waited = time.monotonic() - started
        if quiet >= quiet_s:
            return f"pipeline load before the run: {rate:.0f} records/s (waited {waited:.0f}s)"
        if waited > limit_s:
            return f"warning: pipeline still busy ({rate:.0f} records/s) after {waited:.0f}s"


class CountersAcrossRestarts:
    """Counters summed over the stage's workers and the sink, surviving their restarts.

    A restarted process starts its counters from zero; when a process's pid
    changes, its last reading is carried over, so the totals keep counting the
    work done before the restart. Work done between the last reading and the
    restart is not seen: read often (every second or two) for small errors.
    """

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.restarts: Counter[str] = Counter()
        self._carry: Counter[str] = Counter()
        self._last: dict[str, tuple[int | None, dict[str, int]]] = {}
        self._base = self._read()

    def _sources(self) -> list[tuple[str, int | None, str]]:
        s = self.settings
        sources = [
            (f"worker-{i}", worker(i).process(s).pid(), f"http://{s.host}:{s.worker_port(i)}")
            for i in running(s)
        ]
        sources.append(("sink", SINK.process(s).pid(), f"http://{s.host}:{s.sink_web_port}"))
        return sources

    def _read(self) -> Counter[str]:
        for name, pid, base in self._sources():
            try:
                now = _numbers(httpx.get(f"{base}/stats", timeout=5).json())
            except httpx.HTTPError:
                continue  # starting or stopping: its last reading stands
            last = self._last.get(name)
            if last is not None and last[0] != pid:
                self._carry.update({f"{_kind(name)}.{k}": v for k, v in last[1].items()})
                self.restarts[name] += 1
            self._last[name] = (pid, now)
        total = Counter(self._carry)
        for name, (_pid, counts) in self._last.items():
            total.update({f"{_kind(name)}.{k}": v for k, v in counts.items()})
        return total

    def since_start(self) -> dict[str, int]:
        """`worker.first`, `sink.inserted`, …: the work done since this object was made."""
        return delta(dict(self._base), dict(self._read()))


def _kind(source: str) -> str:
    return "sink" if source == "sink" else "worker"
