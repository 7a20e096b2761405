"""The offset-reset drill (issue 8): rewind the PostgreSQL sink's group to a time before
a tenant's votes, as an operator would after a bad deploy, and prove the counts stay
exact.

Occupants post votes through the gateway; the sink stores them. `sbp replay offsets
reset --execute` is refused while the sink runs. With the sink stopped, the reset to a
datetime is planned, executed and logged; the restarted sink reads every vote again,
stores none twice (its write is idempotent), and the operator log holds exactly the
one row of this reset. The sink is left running and ready for the tests after it.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from devstack.python_services import SINK
from replay.exit_codes import ExitCode
from sbp.settings import Settings
from streams.topics import PG_SINK_GROUP, VOTES_ACCEPTED
from tests.integration.conftest import Tenant
from tests.integration.observe import (
    committed_offsets,
    end_offsets,
    group_members,
    vote_count,
    vote_rows,
    wait_for,
)
from tests.integration.operators import operator_log, operator_token, replay
from tests.integration.votes import vote

VOTES = 300
TOPIC = VOTES_ACCEPTED.name


def sink_stats(settings: Settings) -> dict[str, Any]:
    stats: dict[str, Any] = httpx.get(
        f"http://{settings.host}:{settings.sink_web_port}/stats", timeout=5
    ).json()
    return stats


def sink_caught_up(settings: Settings) -> bool:
    ends = end_offsets(settings, TOPIC)
    committed = committed_offsets(settings, PG_SINK_GROUP, TOPIC)
    # A partition no record ever reached has nothing to commit.
    return all(committed[p] == end for p, end in ends.items() if end > 0)


@pytest.fixture
def sink_restored(tenant: Tenant) -> Iterator[Settings]:
    """Whatever the drill does to the sink, it is running and ready afterwards."""
    yield tenant.settings
    SINK.up(tenant.settings)


def test_reset_the_sink_to_before_the_votes_keeps_counts_exact(
    tenant: Tenant, sink_restored: Settings
) -> None:
    settings = sink_restored
    SINK.up(settings)
    token, operator_user = operator_token(tenant)

    # The records' timestamps are their produce times (CreateTime, set by the vote
    # stage's producer on this machine's clock), so "before the votes" is now.
    before_votes = datetime.now(UTC)
    # Where the votes will start in each partition: the reset must land exactly here.
    first_vote_offsets = end_offsets(settings, TOPIC)
    rng = random.Random(8)
    votes = [
        vote(rng.choice(tenant.zones), rng.randint(-3, 3), minutes_ago=rng.uniform(0.1, 10))
        for _ in range(VOTES)
    ]
    for i in range(0, VOTES, 100):
        answer = httpx.post(
            f"{tenant.gateway}/api/v1/votes/batch",
            json={"items": votes[i : i + 100]},
            headers=tenant.headers(),
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["counts"]["accepted"] == 100
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == VOTES, 120, f"{VOTES} rows")
    wait_for(lambda: sink_caught_up(settings), 60, "the sink's commits at the log end")
    committed_before = committed_offsets(settings, PG_SINK_GROUP, TOPIC)

    reset = ["offsets", "reset", "--group", PG_SINK_GROUP, "--topic", TOPIC]
    to_before = ["--to-datetime", before_votes.isoformat(), "--json"]

    # While the sink consumes, --execute is refused and changes nothing.
    refused = replay(token, *reset, *to_before, "--execute")
    assert refused.returncode == ExitCode.GROUP_ACTIVE, refused.stderr
    assert "STABLE with 1 member(s)" in refused.stderr
    assert refused.stdout == ""
    assert committed_offsets(settings, PG_SINK_GROUP, TOPIC) == committed_before
    assert operator_log(settings, operator_user) == []

    # The operator stops the sink; its consumer leaves the group, which empties.
    SINK.down(settings)
    wait_for(lambda: group_members(settings, PG_SINK_GROUP) == ("EMPTY", 0), 60, "empty group")

    dry = replay(token, *reset, *to_before)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert (planned["executed"], planned["groupState"]) == (False, "EMPTY")
    # Every partition goes back to where the votes began, and no further.
    assert {p["partition"]: p["target"] for p in planned["plan"]} == first_vote_offsets
    rewound = -sum(p["delta"] for p in planned["plan"] if p["delta"] is not None)
    assert rewound >= VOTES
    assert committed_offsets(settings, PG_SINK_GROUP, TOPIC) == committed_before

    executed = replay(token, *reset, *to_before, "--execute")
    assert executed.returncode == 0, executed.stderr
    applied = json.loads(executed.stdout)
    assert applied["executed"] is True
    assert applied["plan"] == planned["plan"]
    # Every partition of the topic now sits at its planned target, committed or not before.
    targets = {p["partition"]: p["target"] for p in applied["plan"]}
    assert committed_offsets(settings, PG_SINK_GROUP, TOPIC) == targets

    [row] = operator_log(settings, operator_user)
    tenant_id, user_id, action, group, topic, detail, at = row
    assert (tenant_id, user_id, action, group, topic) == (
        tenant.tenant_id,
        operator_user,
        "replay.offsets.reset",
        PG_SINK_GROUP,
        TOPIC,
    )
    assert detail["request"] == {
        "kind": "to-datetime",
        "at": before_votes.isoformat(),
        "timestampMs": int(before_votes.timestamp() * 1000),
    }
    assert detail["plan"] == applied["plan"]
    assert detail["groupState"] == "EMPTY"
    assert before_votes < at <= datetime.now(UTC)

    # The restarted sink reads every vote again and stores none of them twice.
    SINK.up(settings)
    wait_for(lambda: sink_stats(settings)["replayed"] >= rewound, 120, "the votes read again")
    wait_for(lambda: sink_caught_up(settings), 60, "the sink back at the log end")
    stats = sink_stats(settings)
    # It read again exactly what the plan rewound, and every row was already there.
    assert (stats["replayed"], stats["inserted"]) == (rewound, 0)
    assert vote_count(settings, tenant.tenant_id) == VOTES
    assert sorted(str(r[0]) for r in vote_rows(settings, tenant.tenant_id)) == sorted(
        v["voteUuid"] for v in votes
    )
    assert len(operator_log(settings, operator_user)) == 1
