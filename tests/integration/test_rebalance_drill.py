"""The rebalance drill: votes flow at a steady rate while workers die, lose their state,
join and leave. PostgreSQL rows and the published windows must equal the generator
exactly, and the drill must really have moved partitions between workers."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

import httpx

from devstack import workers
from devstack.python_services import worker
from devstack.raw_votes import random_raw_votes
from sbp.settings import Settings
from streams.topics import VOTES_RAW, WORKER_APP_ID
from tests.integration.conftest import Tenant
from tests.integration.drills import SteadyLoad, assert_exact, stats_of_all, summed
from tests.integration.observe import (
    committed_offsets,
    end_offsets,
    wait_for,
    wait_group_settled,
)

VOTES = int(os.environ.get("SBP_DRILL_VOTES", "50000"))
RATE = int(os.environ.get("SBP_DRILL_RATE", "2000"))


class OwnershipLog:
    """Which worker instances held each votes.raw partition over the drill."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.owners: dict[int, set[int]] = defaultdict(set)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            for instance in workers.running(self.settings):
                url = f"http://{self.settings.host}:{self.settings.worker_port(instance)}/stats"
                try:
                    held = httpx.get(url, timeout=2).json()["partitions"]
                except (httpx.HTTPError, ValueError, KeyError):
                    continue
                for partition in held:
                    self.owners[partition].add(instance)
            self._stop.wait(0.3)

    def __enter__(self) -> OwnershipLog:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def moved(self) -> list[int]:
        return sorted(p for p, owners in self.owners.items() if len(owners) > 1)


def _kill_and_wipe(settings: Settings, instance: int) -> None:
    service = worker(instance)
    pid = service.process(settings).pid()
    assert pid is not None, f"worker {instance} is not running"
    os.kill(pid, signal.SIGKILL)
    service.process(settings).stop()  # reaps the pid file; the process is gone
    shutil.rmtree(settings.worker_data_dir(instance), ignore_errors=True)


def _commits_at_log_end(settings: Settings) -> bool:
    committed = committed_offsets(settings, WORKER_APP_ID, VOTES_RAW.name)
    # A partition that never had a record has nothing to commit.
    return all(
        committed.get(p, -1) == end or end == 0
        for p, end in end_offsets(settings, VOTES_RAW.name).items()
    )


def test_kill_wipe_join_and_scale_while_votes_flow(tenant: Tenant) -> None:
    settings = tenant.settings
    zones = tuple(f"z{i}" for i in range(1, 9))
    from devstack.seed import seed_zones

    seed_zones(settings, tenant.tenant_id, tenant.building_id, [("f1", z, z) for z in zones])
    votes = random_raw_votes(
        tenant.tenant_id,
        tenant.building_id,
        zones,
        VOTES,
        seed=50_000,
        now=datetime.now(UTC),
        spread_s=20 * 60,
    )
    workers.scale(settings, 3)
    started = time.monotonic()
    try:
        with OwnershipLog(settings) as ownership:
            load = SteadyLoad(settings, votes, RATE).start()
            load.wait_sent(0.2)
            _kill_and_wipe(settings, 2)  # SIGKILL, and its RocksDB files are gone
            worker(4).up(settings)  # a new worker joins
            load.wait_sent(0.5)
            workers.scale(settings, 1)  # 3 → 1
            load.wait_sent(0.75)
            workers.scale(settings, 2)  # 1 → 2; worker 2 starts from the changelog alone
            load.join()
            assert_exact(settings, tenant.tenant_id, tenant.building_id, zones, votes)
            stats = stats_of_all(settings)
            # faust's own commits are not stuck behind anything the stage skipped or
            # repaired: a restart resumes at the end, not far back.
            wait_for(
                lambda: _commits_at_log_end(settings) or None,
                60,
                "the workers' committed offsets to reach the log end",
            )
        moved = ownership.moved()
    finally:
        workers.scale(settings, 1)
        # Leave a settled stack: worker 1 alone in the group, holding every partition.
        wait_group_settled(settings, WORKER_APP_ID, 1, 180)
        worker(1).wait_ready(settings)
    print(
        f"\nrebalance drill: {VOTES} votes at {RATE}/s in {time.monotonic() - started:.0f}s; "
        f"partitions moved: {len(moved)}; on the surviving workers: replayed "
        f"{summed(stats, 'replay')}, bucket re-applications absorbed "
        f"{summed(stats, 'bucket_already')}, records skipped by progress "
        f"{summed(stats, 'skipped_skip')}, gaps repaired {summed(stats, 'gaps_repaired')}, "
        f"batches held for recovery {summed(stats, 'held_for_recovery')}, records deferred "
        f"{summed(stats, 'deferred_not_ready')}"
    )
    assert moved, "no partition changed hands: the drill proved nothing"
