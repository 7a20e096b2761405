"""The metrics under a drill, on the real stack: the sink's lag rises to exactly the records
it has not stored while PostgreSQL is down and falls to 0 once it is back; poison records
move the vote stage's dead-letter counter, and the DLQ depth, by exactly their number; a
vote batch through the gateway is counted under its route and tenant, and each of its
votes ends one ingest→publish latency.

Each figure is read from the services' own `/metrics` pages as Prometheus would scrape
them. Nothing else produces during a test, so every delta is exact.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka.schema_registry import Schema
from prometheus_client.parser import text_string_to_metric_families

from devstack import postgres, workers
from devstack.python_services import GATEWAY, REGISTRY, SINK
from devstack.raw_votes import RawVoteProducer, raw_vote
from sbp.settings import Settings
from schemas.codec import registry_client
from tests.integration.admin_calls import ADMIN, fresh_tenant
from tests.integration.conftest import Tenant
from tests.integration.observe import vote_count, wait_for, worker_stats
from tests.integration.votes import vote

VOTES = 40
POISON = 3
# (sample name, sorted labels) → value, as one scrape shows them.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    text = httpx.get(url, timeout=10).raise_for_status().text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def summed(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and labels.items() <= dict(sample_labels).items()
    )


def sink_metrics(settings: Settings) -> Samples:
    return scrape(f"http://{settings.host}:{settings.sink_web_port}/metrics")


def sink_lag(settings: Settings) -> float:
    return summed(sink_metrics(settings), "sbp_consumer_lag_records", group="sbp-pg-sink")


def worker_dead_letters(settings: Settings, reason: str) -> float:
    return sum(
        summed(
            scrape(f"http://{settings.host}:{settings.worker_port(i)}/metrics"),
            "sbp_dlq_records_total",
            group="sbp-worker",
            reason=reason,
        )
        for i in workers.running(settings)
    )


@pytest.fixture
def postgres_restored(stack: Settings) -> Iterator[None]:
    """PostgreSQL comes back even when the test fails, and the sink and the gateway (whose
    connections find their way back on their own) are ready again."""
    yield
    postgres.up(stack)
    SINK.wait_ready(stack)
    GATEWAY.wait_ready(stack)


def test_sink_lag_counts_what_waits_for_postgres_then_drains(
    tenant: Tenant, postgres_restored: None
) -> None:
    settings = tenant.settings
    # The registry needs PostgreSQL: the producer resolves its writer schema first, and
    # one vote through the whole pipeline caches every schema the stage and sink use.
    producer = RawVoteProducer(settings)
    producer.produce([raw_vote(tenant.tenant_id, "b1", "z2", kind="air", value=5)])
    producer.flush()
    wait_for(lambda: vote_count(settings, tenant.tenant_id) == 1, 60, "the first vote stored")
    wait_for(lambda: sink_lag(settings) == 0, 60, "the sink caught up")
    first_before = worker_stats(settings).get("first", 0)

    postgres.down(settings)
    producer.produce(
        raw_vote(tenant.tenant_id, "b1", "z1", kind="air", value=1, user_ref=f"ref-{i}")
        for i in range(VOTES)
    )
    producer.flush()
    # The vote stage does not need PostgreSQL: it emits every vote to votes.accepted ...
    wait_for(
        lambda: worker_stats(settings).get("first", 0) >= first_before + VOTES,
        60,
        "votes emitted while PostgreSQL is down",
    )
    # ... where the sink reads them and cannot store them: its lag is exactly those.
    wait_for(lambda: sink_lag(settings) == VOTES, 60, f"sink lag at {VOTES}")
    during = sink_metrics(settings)
    assert summed(during, "sbp_sink_database_up") == 0
    assert summed(during, "sbp_consumer_lag_records", group="sbp-pg-sink") == VOTES

    postgres.up(settings)
    wait_for(lambda: sink_lag(settings) == 0, 120, "sink lag back to 0")
    assert vote_count(settings, tenant.tenant_id) == 1 + VOTES
    after = sink_metrics(settings)
    assert summed(after, "sbp_sink_database_up") == 1
    assert summed(after, "sbp_sink_batch_duration_seconds_count") >= 1


@pytest.fixture
def registry_restored(stack: Settings) -> Iterator[None]:
    yield
    REGISTRY.up(stack)


def worker_samples(settings: Settings) -> list[Samples]:
    return [
        scrape(f"http://{settings.host}:{settings.worker_port(i)}/metrics")
        for i in workers.running(settings)
    ]


def worker_lag(settings: Settings) -> float:
    return sum(
        summed(samples, "sbp_consumer_lag_records", group="sbp-worker")
        for samples in worker_samples(settings)
    )


def test_worker_lag_counts_what_waits_behind_a_stalled_batch_then_drains(
    tenant: Tenant, registry_restored: None
) -> None:
    """The vote stage waits out a registry outage inside the batch that needs a schema it
    has not seen: the worker is paused on that record, alive and scraped."""
    settings = tenant.settings
    # A schema registered now, so no worker has ever fetched its id.
    probe = uuid.uuid4().hex[:12]
    schema = {"type": "record", "name": f"Probe{probe}", "fields": [{"name": "n", "type": "long"}]}
    with registry_client(settings) as client:
        unseen = client.register_schema(f"drill-{probe}-value", Schema(json.dumps(schema), "AVRO"))
    wait_for(lambda: worker_lag(settings) == 0, 60, "the vote stage caught up")
    first_before = worker_stats(settings).get("first", 0)
    letters_before = sum(
        summed(samples, "sbp_dlq_records_total", group="sbp-worker")
        for samples in worker_samples(settings)
    )

    # The producer looks its writer schema up now, while the registry answers.
    producer = RawVoteProducer(settings)
    REGISTRY.down(settings)
    # Framed with that id and no body: the stage must ask the registry for it.
    producer.produce_bytes(
        f"{tenant.tenant_id}|b1|z4".encode(), b"\x00" + unseen.to_bytes(4, "big")
    )
    producer.flush()
    wait_for(lambda: worker_lag(settings) == 1, 60, "the stage stalled on the record")
    producer.produce(
        raw_vote(tenant.tenant_id, "b1", "z4", kind="noise", value=4, user_ref=f"ref-{i}")
        for i in range(VOTES)
    )
    producer.flush()
    # Every vote behind the stalled record, on its partition, and the record itself.
    wait_for(lambda: worker_lag(settings) == VOTES + 1, 60, f"worker lag at {VOTES + 1}")
    assert worker_stats(settings).get("first", 0) == first_before

    REGISTRY.up(settings)
    wait_for(lambda: worker_lag(settings) == 0, 120, "worker lag back to 0")
    assert worker_stats(settings).get("first", 0) == first_before + VOTES
    letters = sum(
        summed(samples, "sbp_dlq_records_total", group="sbp-worker")
        for samples in worker_samples(settings)
    )
    # The record has no body for that schema: one dead letter.
    assert letters == letters_before + 1


def test_poison_records_move_the_dead_letter_counter_and_depth_by_their_number(
    tenant: Tenant,
) -> None:
    settings = tenant.settings
    reason = "not_avro_framed"
    # The depth is read every `dlq_depth_every_s`: a reading after any earlier test's.
    depth_before, by_reason_before = sink_dlq_depth_read_after(settings, time.time(), reason)
    counted_before = worker_dead_letters(settings, reason)

    with RawVoteProducer(settings) as producer:
        key = f"{tenant.tenant_id}|b1|z1".encode()
        for i in range(POISON):
            producer.produce_bytes(key, b"not avro %d" % i)

    wait_for(
        lambda: worker_dead_letters(settings, reason) >= counted_before + POISON,
        60,
        f"{POISON} dead letters counted",
    )
    assert worker_dead_letters(settings, reason) == counted_before + POISON
    # Read after the dead letters were confirmed: exactly those more are retained, all
    # of them under their reason.
    assert sink_dlq_depth_read_after(settings, time.time(), reason) == (
        depth_before + POISON,
        by_reason_before + POISON,
    )


def sink_dlq_depth_read_after(
    settings: Settings, moment: float, reason: str
) -> tuple[float, float]:
    """The DLQ depth, and that of one reason, from a reading taken after `moment` (the
    probe reads every few seconds) that has counted every retained letter's reason."""

    def fresh() -> tuple[float, float] | None:
        samples = sink_metrics(settings)
        if summed(samples, "sbp_dlq_depth_read_timestamp_seconds") <= moment:
            return None
        if summed(samples, "sbp_dlq_depth_by_reason_behind_records") > 0:
            return None  # still catching up with a backlog: the next reading
        return (
            summed(samples, "sbp_dlq_depth_records", topic="votes.dlq"),
            summed(samples, "sbp_dlq_depth_by_reason_records", reason=reason),
        )

    return wait_for(fresh, 6 * settings.dlq_depth_every_s + 10, "a fresh DLQ depth reading")


def gateway_metrics(settings: Settings) -> Samples:
    return scrape(f"http://{settings.host}:{settings.gateway_metrics_port}/metrics")


def ingest_to_publish_count(settings: Settings) -> float:
    return sum(
        summed(
            scrape(f"http://{settings.host}:{settings.worker_port(i)}/metrics"),
            "sbp_ingest_to_publish_seconds_count",
        )
        for i in workers.running(settings)
    )


def test_votes_through_the_gateway_are_counted_per_route_and_tenant_and_timed_to_publish(
    tenant: Tenant,
) -> None:
    settings = tenant.settings
    route = {"route": "/api/v1/votes/batch", "method": "POST", "status": "200"}
    # This process labels the first tenants it sees; later ones are `other`.
    labels = (tenant.tenant_id, "other")
    before = gateway_metrics(settings)
    published_before = ingest_to_publish_count(settings)

    items = [vote("z3", v) for v in (-1, 0, 1)]
    answer = httpx.post(
        f"{tenant.gateway}/api/v1/votes/batch",
        json={"items": items},
        headers=tenant.headers(),
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["counts"]["accepted"] == 3
    unauthenticated = httpx.post(f"{tenant.gateway}/api/v1/votes/batch", json={}, timeout=30)
    assert unauthenticated.status_code == 401
    # The metrics are never on the public API's port.
    assert httpx.get(f"{tenant.gateway}/metrics", timeout=30).status_code == 404

    after = gateway_metrics(settings)

    def delta(**labels: str) -> float:
        name = "sbp_http_requests_total"
        return summed(after, name, **labels) - summed(before, name, **labels)

    assert sum(delta(**route, tenant=label) for label in labels) == 1
    assert delta(**{**route, "status": "401"}, tenant="none") == 1

    # Each accepted vote ends its ingest→publish latency once, when its zone is published.
    wait_for(
        lambda: ingest_to_publish_count(settings) >= published_before + 3,
        60,
        "three votes published",
    )
    assert ingest_to_publish_count(settings) == published_before + 3


def test_the_tenant_service_counts_forwarded_admin_calls_under_the_verified_tenant(
    stack: Settings,
) -> None:
    tenant_id, tenant_admin = fresh_tenant(stack)
    route = {"route": "/api/v1/admin/buildings", "method": "GET", "status": "200"}
    url = f"http://{stack.host}:{stack.admin_metrics_port}/metrics"
    before = scrape(url)
    assert tenant_admin("GET", f"{ADMIN}/buildings").status_code == 200
    after = scrape(url)
    name = "sbp_http_requests_total"
    counted = sum(
        summed(after, name, **route, tenant=label) - summed(before, name, **route, tenant=label)
        for label in (tenant_id, "other")
    )
    assert counted == 1
