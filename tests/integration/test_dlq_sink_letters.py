"""A sink's dead letters re-driven on the real stack: votes of a tenant that had no
PostgreSQL schema are dead-lettered by the sink (`unknown_tenant`); once the tenant is
created, `dlq reprocess` sends them back into votes.accepted (as the worker would, not
through the vote stage again) and the sink stores each once."""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from devstack.raw_votes import RawVoteProducer, random_raw_votes
from devstack.seed import seed_zones
from replay.kafka_records import READER_GROUP
from sbp.settings import Settings
from streams.topics import PG_SINK_GROUP, VOTES_ACCEPTED, VOTES_DLQ, VOTES_RAW
from tests.integration.conftest import Tenant
from tests.integration.observe import (
    committed_offsets,
    end_offsets,
    group_members,
    vote_rows,
    wait_for,
)
from tests.integration.operators import operator_token, replay

VOTES = 60
ZONES = ("z1", "z2")


def _reprocess(token: str, since: datetime, *extra: str) -> dict[str, Any]:
    result = replay(
        token,
        "dlq",
        "reprocess",
        "--reason",
        "unknown_tenant",
        "--group",
        PG_SINK_GROUP,
        "--since",
        since.isoformat(),
        "--json",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def _listed(settings: Settings, token: str, since: datetime) -> dict[str, Any]:
    result = replay(token, "dlq", "list", "--since", since.isoformat(), "--json")
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_a_tenant_created_late_gets_its_dead_lettered_votes_stored_once(tenant: Tenant) -> None:
    settings = tenant.settings
    token, _user = operator_token(tenant)
    late_tenant = f"t-{uuid.uuid4().hex[:12]}"
    since = datetime.now(UTC)
    votes = random_raw_votes(
        late_tenant, "b1", ZONES, VOTES, seed=random.randrange(1 << 30), now=since, spread_s=120
    )
    with RawVoteProducer(settings) as producer:
        producer.produce(votes)

    wait_for(lambda: _listed(settings, token, since)["total"] == VOTES, 120, "the sink's letters")
    listed = _listed(settings, token, since)
    assert listed["byReason"] == {"unknown_tenant": VOTES}
    assert {row["topic"] for row in listed["rows"]} == {VOTES_ACCEPTED.name}
    # Reading the DLQ joined no group and committed nothing.
    assert group_members(settings, READER_GROUP) == ("DEAD", 0)
    assert all(o < 0 for o in committed_offsets(settings, READER_GROUP, VOTES_DLQ.name).values())

    # The fix: the tenant is created (with its schema) through the tenant service's store.
    seed_zones(settings, late_tenant, "b1", [("f1", z, z) for z in ZONES])
    raw_end = end_offsets(settings, VOTES_RAW.name)
    done = _reprocess(token, since, "--execute")
    assert (done["executed"], done["redriven"]) == (True, VOTES)
    assert done["redriveByTopic"] == {VOTES_ACCEPTED.name: VOTES}
    # Back to the sink only: the vote stage, which counted them already, reads nothing.
    assert end_offsets(settings, VOTES_RAW.name) == raw_end

    wait_for(lambda: len(vote_rows(settings, late_tenant)) >= VOTES, 120, "the votes stored")
    assert sorted(r[0] for r in vote_rows(settings, late_tenant)) == sorted(
        v["voteUuid"] for v in votes
    )
    # Nothing failed again, and nothing is left to re-drive.
    assert _listed(settings, token, since)["total"] == VOTES
    again = _reprocess(token, since)
    assert again["totals"] == {
        "redrive": 0,
        "already-redriven": VOTES,
        "attempts-cap": 0,
        "not-redrivable": 0,
    }
