"""SIGKILL the worker while votes keep arriving, restart it with its files kept: PostgreSQL
rows and bucket states must equal exactly what was sent, though records were processed
twice (at-least-once). The rebalance drill covers a kill with the files wiped."""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime

from devstack import workers
from devstack.python_services import WORKER
from devstack.raw_votes import random_raw_votes
from tests.integration.conftest import Tenant
from tests.integration.drills import SteadyLoad, assert_exact
from tests.integration.observe import wait_for, worker_stats

VOTES = 20_000
RATE = 2_000


def test_sigkill_under_live_load_then_restart_is_exact(tenant: Tenant) -> None:
    settings = tenant.settings
    workers.scale(settings, 1)
    # Within the last 30 minutes, so every vote sits in the 60-minute window.
    votes = random_raw_votes(
        tenant.tenant_id,
        tenant.building_id,
        tenant.zones,
        VOTES,
        seed=20_000,
        now=datetime.now(UTC),
        spread_s=30 * 60,
    )
    emitted_before = worker_stats(settings).get("emitted", 0)
    load = SteadyLoad(settings, votes, RATE).start()
    emitted_at_kill = wait_for(
        lambda: (n := worker_stats(settings).get("emitted", 0) - emitted_before) >= 3_000 and n,
        60,
        "the worker part-way through the load",
    )
    worker_pid = WORKER.process(settings).pid()
    assert worker_pid is not None
    os.kill(worker_pid, signal.SIGKILL)
    WORKER.process(settings).stop()  # reaps the pid file; the process is already gone
    # Killed mid-stream, with the load still arriving.
    assert emitted_at_kill < VOTES
    assert load.sent < VOTES

    WORKER.up(settings)
    load.join()
    assert_exact(settings, tenant.tenant_id, tenant.building_id, tenant.zones, votes)

    stats = worker_stats(settings)
    print(
        f"\ncrash test: killed after {emitted_at_kill} emits; after the restart "
        f"{stats.get('replay', 0)} records re-emitted, {stats.get('skipped_skip', 0)} "
        f"skipped as already durable, {stats.get('gaps_repaired', 0)} gaps repaired"
    )
