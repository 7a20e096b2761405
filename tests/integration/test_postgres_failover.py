"""The PostgreSQL failover drill (issue 8): runbooks/postgres-failover.md, executed.

Occupants vote through the gateway the whole time. Every command of the runbook
runs in order: a streaming standby is made; the primary's processes are all killed
at once (a lost host); the standby is promoted; the sink is rewound; the services
are repointed. Then every vote the gateway answered `accepted` must be on the new
primary exactly once.

On one machine a standby replays within milliseconds, so whether the lost primary
takes committed rows with it would be luck. The drill makes it certain: the
standby's stream is cut a few seconds before the loss (as a partition between the
two hosts would), and the test checks that the promoted standby lacks rows the
sink had committed, before the runbook's rewind brings them back.

The runbook's last sections rebuild the old primary as a standby and switch back,
so the stack ends as it began (main on `pg_port`, no replica) for the tests after
this one, and the votes are checked there again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest

from devstack import pg_replication, postgres
from devstack import stack as devstack
from devstack.pg_repoint import repoint
from devstack.postgres import MAIN, REPLICA, ClusterError
from sbp.settings import REPO_ROOT, Settings
from tests.integration.conftest import Tenant
from tests.integration.gateway_load import GatewayLoad
from tests.integration.observe import vote_count, vote_rows, wait_for
from tests.integration.runbook_commands import run_line, section_lines
from tests.integration.votes import vote

RUNBOOK = REPO_ROOT / "runbooks" / "postgres-failover.md"
VOTES = 6000
RATE = 150  # votes/s: the load spans the whole failover, about 40 s


def run_section(number: int) -> None:
    for line in section_lines(RUNBOOK, number):
        result = run_line(line)
        assert result.returncode == 0, f"step {number}: {line}\n{result.stdout}\n{result.stderr}"


def on(settings: Settings, cluster: str) -> Settings:
    return settings.model_copy(update={"pg_port": postgres.cluster(settings, cluster).port})


def sink_stats(settings: Settings) -> dict[str, Any]:
    url = f"http://{settings.host}:{settings.sink_web_port}/stats"
    stats: dict[str, Any] = httpx.get(url, timeout=5).json()
    return stats


def cut_stream(settings: Settings) -> None:
    """Cut the replica's WAL stream: an empty primary_conninfo, which is reloadable, so
    the WAL receiver stops at once (the promotion resets the setting)."""
    replica = postgres.cluster(settings, REPLICA)
    dsn = postgres.superuser_dsn(settings, port=replica.port)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET primary_conninfo = ''")
        conn.execute("SELECT pg_reload_conf()")


def restore_layout(settings: Settings) -> None:
    """Back to main as the services' primary and no replica, from wherever a failed
    drill stopped (best effort; a drill that passes has done it through the runbook)."""
    main, replica = postgres.cluster(settings, MAIN), postgres.cluster(settings, REPLICA)
    live_primary = [
        c
        for c in (main, replica)
        if postgres.answers(settings, c) and not postgres.in_recovery(settings, c)
    ]
    if live_primary == [replica]:
        postgres.set_primary(settings, REPLICA)
        pg_replication.build_standby(settings, MAIN)
        postgres.stop(replica)
        pg_replication.promote(settings, MAIN)
    elif not live_primary:
        # Killed before any promotion: main's own crash recovery loses nothing.
        main.fence_file.unlink(missing_ok=True)
        postgres.set_primary(settings, MAIN)
        postgres.start(settings, main)
    pg_replication.remove(settings, REPLICA)
    # The services may still point at the replica (a promotion records the primary,
    # only a repoint restarts them).
    repoint(settings, MAIN, log=lambda _line: None)
    devstack.up(settings, log=lambda _line: None)


@pytest.fixture
def original_layout(stack: Settings) -> Iterator[Settings]:
    assert postgres.primary(stack).name == MAIN and not postgres.cluster(stack, REPLICA).exists()
    yield stack
    services_ready = all(s.ready for s in devstack.status(stack))
    if (
        postgres.primary(stack).name != MAIN
        or postgres.cluster(stack, REPLICA).exists()
        or not services_ready
    ):
        restore_layout(stack)


def test_the_standby_streams_as_a_replication_only_role_and_cannot_be_promoted_early(
    original_layout: Settings,
) -> None:
    settings = original_layout
    pg_replication.build_standby(settings, REPLICA)
    try:
        [standby] = pg_replication.status(settings)[0].detail["standbys"]
        assert (standby["standby"], standby["state"]) == (REPLICA, "streaming")
        with psycopg.connect(postgres.superuser_dsn(settings)) as conn:
            row = conn.execute(
                "SELECT rolreplication, rolsuper, rolcreatedb, rolcreaterole, rolbypassrls"
                " FROM pg_roles WHERE rolname = %s",
                (settings.pg_replication_user,),
            ).fetchone()
        assert row == (True, False, False, False, False)
        # The role streams WAL and does nothing else: no ordinary session at all.
        replicator = settings.model_copy(
            update={
                "pg_app_user": settings.pg_replication_user,
                "pg_app_password": settings.pg_replication_password,
            }
        )
        with pytest.raises(psycopg.OperationalError, match=r"pg_hba\.conf rejects"):
            psycopg.connect(replicator.pg_dsn("app"), connect_timeout=5).close()
        # Two primaries would each take writes the other never sees.
        with pytest.raises(ClusterError, match="still answers as a primary"):
            pg_replication.promote(settings, REPLICA)
        assert postgres.in_recovery(settings, postgres.cluster(settings, REPLICA))
        assert not postgres.cluster(settings, MAIN).is_fenced()
    finally:
        pg_replication.remove(settings, REPLICA)


def assert_stored_once(
    settings: Settings, tenant: Tenant, load: GatewayLoad, sent: set[str]
) -> int:
    stored = [row[0] for row in vote_rows(settings, tenant.tenant_id)]
    assert len(stored) == len(set(stored)), "a vote is stored twice"
    missing = load.accepted - set(stored)
    assert not missing, f"{len(missing)} accepted votes missing, e.g. {sorted(missing)[:3]}"
    # Nothing stored that was never sent (a vote answered `unavailable` may be stored:
    # Kafka confirmed it after the gateway stopped waiting).
    assert set(stored) <= sent
    return len(stored)


def test_failover_to_the_standby_loses_no_accepted_vote(
    original_layout: Settings, tenant: Tenant
) -> None:
    settings = original_layout
    votes = [
        vote(tenant.zones[i % 4], value=(i % 7) - 3, minutes_ago=2 + (i % 10)) for i in range(VOTES)
    ]
    sent = {v["voteUuid"] for v in votes}
    # A gateway restart (the repoint) takes seconds; the app keeps retrying meanwhile.
    load = GatewayLoad(tenant, votes, rate=RATE, attempts=300, retry_pause_s=0.2)

    run_section(1)  # a streaming standby
    assert [r.role for r in pg_replication.status(settings)] == ["primary", "standby"]

    load.start()
    load.wait_sent(VOTES // 8)
    main, replica = on(settings, MAIN), on(settings, REPLICA)
    wait_for(lambda: vote_count(main, tenant.tenant_id) > 0, 60, "votes stored")
    cut_stream(settings)
    wait_for(
        lambda: (
            not pg_replication.standby_position(
                settings, postgres.cluster(settings, REPLICA)
            ).receiving
        ),
        30,
        "the standby's stream cut",
    )
    on_standby = vote_count(replica, tenant.tenant_id)
    # The sink goes on storing (and committing offsets) on the primary alone.
    wait_for(
        lambda: vote_count(main, tenant.tenant_id) >= on_standby + 300,
        60,
        "rows only the primary has",
    )
    stored_at_loss = vote_count(main, tenant.tenant_id)
    sent_at_loss = load.sent
    run_section(2)  # the primary's host lost; the signs of it
    assert not postgres.answers(settings, postgres.cluster(settings, MAIN))
    # Votes go on being accepted with no PostgreSQL at all: they wait in Kafka.
    assert load.sent > sent_at_loss

    run_section(4)  # promote; stop the sink and rewind it
    assert postgres.cluster(settings, MAIN).is_fenced()
    # Committed on the lost primary, absent from the new one: only the rewind restores them.
    assert vote_count(replica, tenant.tenant_id) < stored_at_loss
    run_section(5)  # repoint
    assert postgres.primary(settings).name == REPLICA
    load.join(timeout=600)

    run_section(6)  # verify: the sink at the log end
    accepted = len(load.accepted)
    assert accepted >= VOTES * 0.99, load.statuses
    assert assert_stored_once(on(settings, REPLICA), tenant, load, sent) >= accepted
    # The rewind made the restarted sink read again rows it had stored before the loss.
    assert sink_stats(settings)["replayed"] > 0

    run_section(7)  # the old primary rebuilt as a standby
    assert [r.role for r in pg_replication.status(settings)] == ["standby", "primary"]
    run_section(8)  # switch back
    assert postgres.primary(settings).name == MAIN
    assert not postgres.cluster(settings, REPLICA).exists()
    assert all(s.ready for s in devstack.status(settings))
    assert assert_stored_once(settings, tenant, load, sent) >= accepted
