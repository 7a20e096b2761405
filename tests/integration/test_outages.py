"""Dependency outages degrade clearly and recover by themselves, without losing or
double-counting a vote (brief §9, invariants 1, 2 and 5)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest

from devstack import kafka, postgres, redis_server
from devstack.raw_votes import RawVoteProducer, raw_vote
from sbp.settings import Settings
from tests.integration.conftest import Tenant
from tests.integration.observe import vote_count, wait_for, wait_window, worker_stats
from tests.integration.votes import vote


@pytest.fixture
def restore_stack(stack: Settings) -> Iterator[None]:
    """Whatever a test stops is started again, even when the test fails, and the
    gateway must find its way back to ready on its own."""
    yield
    postgres.up(stack)
    redis_server.up(stack)
    gateway = f"http://{stack.host}:{stack.gateway_port}/readyz"
    wait_for(lambda: httpx.get(gateway, timeout=5).status_code == 200, 60, "gateway ready")


def test_sink_retries_while_postgres_is_down(tenant: Tenant, restore_stack: None) -> None:
    settings = tenant.settings
    votes = [
        raw_vote(tenant.tenant_id, "b1", "z1", kind="air", value=1, user_ref=f"ref-{i}")
        for i in range(50)
    ]
    # The writer schema is looked up in the registry, which needs PostgreSQL: before.
    producer = RawVoteProducer(settings)
    # One vote through first, so the worker has this schema cached (the registry is
    # down with PostgreSQL) and this test does not depend on what ran before it.
    producer.produce([raw_vote(tenant.tenant_id, "b1", "z2", kind="air", value=5)])
    producer.flush()
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == 1, 60, "the first vote")
    before = worker_stats(settings).get("first", 0)
    postgres.down(settings)

    producer.produce(votes)
    producer.flush()
    # The worker processes them while the database is away; the sink holds its batch.
    wait_for(
        lambda: worker_stats(settings).get("first", 0) >= before + 50,
        60,
        "votes processed while PostgreSQL is down",
    )
    # The live windows do not wait for history: they count the 50 votes now.
    live = wait_window(settings, tenant.tenant_id, "z1", "air", "15m", 50)
    assert live["distribution"] == {"1": 50}
    assert vote_count_while_down_fails(settings)

    # A tenant the gateway has never seen cannot be checked: a clear 503, nothing accepted.
    stranger = Tenant(settings, f"t-{uuid.uuid4().hex[:12]}", "b1", ("z1",))
    refused = httpx.post(
        f"{stranger.gateway}/api/v1/votes/batch",
        json={"items": [vote("z1", 1)]},
        headers=stranger.headers(),
        timeout=30,
    )
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "zone_registry_unavailable"
    assert refused.headers["retry-after"] == "5"

    postgres.up(settings)
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == 51, 120, "rows after recovery")
    assert vote_count(settings, tenant.tenant_id) == 51


def vote_count_while_down_fails(settings: Settings) -> bool:
    """PostgreSQL really is down while the windows moved (not a test that cannot fail)."""
    try:
        vote_count(settings, "nobody")
    except psycopg.OperationalError:
        return True
    return False


def test_losing_redis_never_double_counts(tenant: Tenant, restore_stack: None) -> None:
    settings = tenant.settings
    items = [vote("z2", v) for v in (1, 2, 3)]
    headers = tenant.headers()
    url = f"{tenant.gateway}/api/v1/votes/batch"

    duplicates_before = worker_stats(settings).get("duplicate", 0)
    redis_server.down(settings)
    first = httpx.post(url, json={"items": items}, headers=headers, timeout=30)
    # Without Redis the gateway cannot tell duplicates, but it still ingests.
    assert first.status_code == 200, first.text
    assert first.json()["counts"]["accepted"] == 3

    redis_server.up(settings)
    again = httpx.post(url, json={"items": items}, headers=headers, timeout=30)
    # The duplicate marks were never recorded: the retry is answered accepted ...
    assert again.json()["counts"]["accepted"] == 3

    # ... and is still counted once: the processor's dedup drops the three retries.
    wait_for(
        lambda: worker_stats(settings).get("duplicate", 0) >= duplicates_before + 3,
        60,
        "the retries judged duplicates",
    )
    stats = wait_window(settings, tenant.tenant_id, "z2", "thermal", "15m", 3)
    assert stats["distribution"] == {"1": 1, "2": 1, "3": 1}
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == 3, 60, "three rows")
    assert vote_count(settings, tenant.tenant_id) == 3


def test_gateway_answers_503_while_kafka_is_down(tenant: Tenant, stack: Settings) -> None:
    url = f"{tenant.gateway}/api/v1/votes/batch"
    try:
        kafka.down(stack)
        wait_for(
            lambda: httpx.get(f"{tenant.gateway}/readyz", timeout=5).status_code == 503,
            30,
            "gateway not ready without Kafka",
        )
        refused = httpx.post(
            url, json={"items": [vote("z1", 1)]}, headers=tenant.headers(), timeout=30
        )
        assert refused.status_code == 503
        assert refused.json()["error"]["code"] == "broker_unavailable"
        assert int(refused.headers["retry-after"]) > 0
    finally:
        kafka.start(stack)
        kafka.wait_ready(stack)
    # Both the gateway and the worker find the broker again on their own.
    wait_for(
        lambda: httpx.get(f"{tenant.gateway}/readyz", timeout=5).status_code == 200,
        60,
        "gateway ready again",
    )
    accepted = wait_for(
        lambda: (
            (
                r := httpx.post(
                    url, json={"items": [vote("z1", 1)]}, headers=tenant.headers(), timeout=30
                )
            ).status_code
            == 200
            and r.json()["counts"]["accepted"] == 1
            and r
        ),
        60,
        "a vote accepted after the outage",
    )
    assert accepted
    wait_for(lambda: vote_count(stack, tenant.tenant_id) == 1, 120, "the vote stored")
