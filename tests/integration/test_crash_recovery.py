"""SIGKILL the worker while votes keep arriving, restart it with its files kept: PostgreSQL
rows and bucket states must equal exactly what was sent, though records were processed
twice (at-least-once). Once with votes produced straight onto votes.raw, once with
occupants posting through the gateway. The rebalance drill covers a kill with the files
wiped."""

from __future__ import annotations

import os
import random
import signal
from datetime import UTC, datetime

from devstack import workers
from devstack.python_services import WORKER
from devstack.raw_votes import KINDS, random_raw_votes
from sbp.settings import Settings
from tests.integration.conftest import Tenant
from tests.integration.drills import SteadyLoad, assert_exact
from tests.integration.gateway_load import GatewayLoad
from tests.integration.observe import wait_for, worker_stats
from tests.integration.votes import vote

VOTES = 20_000
RATE = 2_000


def _kill_part_way(settings: Settings, emitted_before: int) -> int:
    """SIGKILL the worker once it has emitted 3,000 votes of the load; returns how many."""
    emitted: int = wait_for(
        lambda: (n := worker_stats(settings).get("emitted", 0) - emitted_before) >= 3_000 and n,
        60,
        "the worker part-way through the load",
    )
    worker_pid = WORKER.process(settings).pid()
    assert worker_pid is not None
    os.kill(worker_pid, signal.SIGKILL)
    WORKER.process(settings).stop()  # reaps the pid file; the process is already gone
    return emitted


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
    emitted_at_kill = _kill_part_way(settings, emitted_before)
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


GATEWAY_VOTES = 15_000
GATEWAY_RATE = 1_000


def test_sigkill_while_the_gateway_takes_votes_then_restart_is_exact(tenant: Tenant) -> None:
    """The case a pre-filled topic never shows: occupants keep posting through the gateway
    while the worker dies and comes back with its files. Every vote the gateway answered
    accepted is stored and counted once, and nothing the gateway refused is."""
    settings = tenant.settings
    workers.scale(settings, 1)
    rng = random.Random(15_000)
    votes = [
        vote(
            rng.choice(tenant.zones),
            rng.randint(-3, 3) if (kind := rng.choice(KINDS)) == "thermal" else rng.randint(1, 5),
            kind,
            building=tenant.building_id,
            minutes_ago=rng.uniform(0.1, 30),
        )
        for _ in range(GATEWAY_VOTES)
    ]
    emitted_before = worker_stats(settings).get("emitted", 0)
    load = GatewayLoad(tenant, votes, GATEWAY_RATE).start()
    emitted_at_kill = _kill_part_way(settings, emitted_before)
    sent_at_kill = load.sent
    # The gateway keeps taking votes while no worker runs.
    load.wait_sent(sent_at_kill + 2_000)
    assert load.sent < GATEWAY_VOTES
    WORKER.up(settings)
    load.join()

    assert load.statuses["accepted"] + load.statuses["late_submission"] == GATEWAY_VOTES
    assert load.accepted == {v["voteUuid"] for v in votes}
    assert_exact(settings, tenant.tenant_id, tenant.building_id, tenant.zones, votes)
    stats = worker_stats(settings)
    print(
        f"\ngateway crash test: killed after {emitted_at_kill} emits with {sent_at_kill} sent; "
        f"{load.resent} requests re-sent; after the restart {stats.get('replay', 0)} records "
        f"re-emitted, {stats.get('gaps_repaired', 0)} gaps repaired"
    )
