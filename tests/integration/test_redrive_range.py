"""The range re-drive on the real stack: a time range of votes.raw re-published into
votes.raw is read again by the vote stage, which finds every vote a duplicate, so
PostgreSQL and the windows stay exact; the operator log holds the one re-drive."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

from devstack.raw_votes import RawVoteProducer, random_raw_votes
from streams.topics import VOTES_RAW
from tests.integration.conftest import Tenant
from tests.integration.drills import expected_windows, published_windows
from tests.integration.observe import end_offsets, vote_count, wait_for, worker_stats
from tests.integration.operators import operator_log, operator_token, replay

VOTES = 150


def test_a_time_range_re_driven_into_votes_raw_counts_nothing_twice(tenant: Tenant) -> None:
    settings = tenant.settings
    token, operator_user = operator_token(tenant)
    before = datetime.now(UTC)
    start = end_offsets(settings, VOTES_RAW.name)
    votes = random_raw_votes(
        tenant.tenant_id,
        tenant.building_id,
        tenant.zones,
        VOTES,
        seed=random.randrange(1 << 30),
        now=before,
        spread_s=300,
    )
    with RawVoteProducer(settings) as producer:
        producer.produce(votes)
    after = end_offsets(settings, VOTES_RAW.name)
    want = expected_windows(votes)

    def windows() -> object:
        return published_windows(settings, tenant.tenant_id, tenant.building_id, tenant.zones)

    wait_for(lambda: vote_count(settings, tenant.tenant_id) == VOTES, 120, f"{VOTES} rows")
    wait_for(lambda: windows() == want, 120, "windows counting every vote once")
    duplicates_before = worker_stats(settings).get("duplicate", 0)

    # By offsets, on the partitions the votes went to: exactly those records.
    partitions = sorted(p for p in after if after[p] > start[p])
    by_offset = ["--topic", VOTES_RAW.name, "--json"]
    for p in partitions:
        one = replay(
            token,
            "redrive",
            *by_offset,
            "--partition",
            str(p),
            "--from",
            str(start[p]),
            "--to",
            str(after[p]),
        )
        assert one.returncode == 0, one.stderr
        assert json.loads(one.stdout)["records"] == after[p] - start[p]

    # By time: from before the votes to now, a dry-run first, then executed.
    window = ["--from", before.isoformat(), "--to", datetime.now(UTC).isoformat()]
    dry = replay(token, "redrive", *by_offset, *window)
    assert dry.returncode == 0, dry.stderr
    planned = json.loads(dry.stdout)
    assert (planned["executed"], planned["records"]) == (False, VOTES)
    assert end_offsets(settings, VOTES_RAW.name) == after

    done = replay(token, "redrive", *by_offset, *window, "--execute")
    assert done.returncode == 0, done.stderr
    republished = json.loads(done.stdout)
    assert (republished["executed"], republished["published"]) == (True, VOTES)
    assert end_offsets(settings, VOTES_RAW.name) == {
        p: end + (after[p] - start[p]) for p, end in after.items()
    }

    # The stage read every re-driven vote and found each a duplicate.
    wait_for(
        lambda: worker_stats(settings).get("duplicate", 0) - duplicates_before >= VOTES,
        120,
        "the re-driven votes judged duplicates",
    )
    assert worker_stats(settings).get("duplicate", 0) - duplicates_before == VOTES
    assert vote_count(settings, tenant.tenant_id) == VOTES
    assert windows() == want

    [row] = operator_log(settings, operator_user)
    _tenant, _user, action, group, topic, detail, _at = row
    assert (action, group, topic, detail["records"]) == (
        "replay.redrive",
        "sbp-worker",
        VOTES_RAW.name,
        VOTES,
    )
