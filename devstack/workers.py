"""How many vote-stage workers run: `sbp dev up --workers N` and the scaling drills.

Workers are numbered 1..N; each has its own static member id, web port and data
dir (sbp/settings.py). Scaling down stops the highest numbers first, so the
group rebalances their partitions onto the ones that remain.
"""

from __future__ import annotations

import re

from devstack.python_services import PythonService, worker
from sbp.settings import Settings

_PID_FILE = re.compile(r"^worker-(\d+)\.pid$")


def running(settings: Settings) -> list[int]:
    """The instance numbers with a live worker process, ascending."""
    run_dir = settings.state_dir / "run"
    if not run_dir.is_dir():
        return []
    found = []
    for path in run_dir.iterdir():
        match = _PID_FILE.match(path.name)
        if match and worker(int(match.group(1))).process(settings).is_running():
            found.append(int(match.group(1)))
    return sorted(found)


def scale(settings: Settings, count: int, *, wait: bool = True) -> list[PythonService]:
    """Run exactly workers 1..count; returns the services started now."""
    if count < 1:
        raise ValueError("at least one worker is needed")
    for instance in running(settings):
        if instance > count:
            worker(instance).down(settings)
    started = []
    for instance in range(1, count + 1):
        service = worker(instance)
        if not service.process(settings).is_running():
            service.start(settings)
            started.append(service)
    if wait:
        for instance in range(1, count + 1):
            worker(instance).wait_ready(settings)
    return started


def stop_all(settings: Settings) -> list[int]:
    stopped = running(settings)
    for instance in stopped:
        worker(instance).down(settings)
    return stopped
