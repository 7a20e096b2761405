"""SIGKILL the worker mid-stream: after a restart, PostgreSQL rows and bucket states must
equal exactly what was sent, though some records were processed twice (at-least-once)."""

from __future__ import annotations

import os
import signal
from collections import Counter, defaultdict
from datetime import UTC, datetime

from devstack.python_services import WORKER
from devstack.raw_votes import KINDS, RawVoteProducer, random_raw_votes
from tests.integration.conftest import Tenant
from tests.integration.observe import (
    vote_count,
    vote_rows,
    wait_for,
    window,
    worker_stats,
    zone_snapshot,
)

VOTES = 20_000


def test_sigkill_mid_stream_then_restart_is_exact(tenant: Tenant) -> None:
    settings = tenant.settings
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
    worker_pid = WORKER.process(settings).pid()
    assert worker_pid is not None

    with RawVoteProducer(settings) as producer:
        producer.produce(votes)
    stored_at_kill = wait_for(
        lambda: (n := vote_count(settings, tenant.tenant_id)) > 0 and n, 120, "first rows"
    )
    os.kill(worker_pid, signal.SIGKILL)
    WORKER.process(settings).stop()  # reaps the pid file; the process is already gone
    assert 0 < stored_at_kill < VOTES, stored_at_kill
    # Nothing writes while the worker is dead: the count stays where the kill left it.
    stored_while_dead = vote_count(settings, tenant.tenant_id)
    assert stored_at_kill <= stored_while_dead < VOTES

    WORKER.up(settings)
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == VOTES, 300, "all rows")

    rows = vote_rows(settings, tenant.tenant_id)
    assert len(rows) == VOTES
    assert sorted((r[0], r[1], r[2], r[3]) for r in rows) == sorted(
        (v["voteUuid"], v["zoneId"], v["kind"], v["value"]) for v in votes
    )

    # Bucket states, read back through the published 60-minute windows.
    expected: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for v in votes:
        expected[(v["zoneId"], v["kind"])][str(v["value"])] += 1

    def windows_complete() -> dict[tuple[str, str], dict[str, int]] | None:
        seen = {}
        for zone in tenant.zones:
            snap = zone_snapshot(settings, tenant.tenant_id, tenant.building_id, zone)
            for kind in KINDS:
                stats = window(snap, kind, "60m")
                seen[(zone, kind)] = stats["distribution"] if stats else {}
        return seen if sum(sum(d.values()) for d in seen.values()) == VOTES else None

    published = wait_for(windows_complete, 120, "snapshots covering every vote")
    assert published == {key: dict(sorted(c.items())) for key, c in expected.items()}

    # The restarted worker saw records again that the idempotent steps absorbed.
    stats = worker_stats(settings)
    replayed = (
        stats.get("processor_replay", 0)
        + stats.get("aggregator_replayed", 0)
        + stats.get("sink_replayed", 0)
    )
    assert replayed > 0, stats
