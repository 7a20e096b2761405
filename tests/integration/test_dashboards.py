"""Every panel of every Grafana dashboard shows data from the real services.

Debian's Prometheus is started against the running stack, with the project's scrape
configuration (its job names, the stack's ports, a one-second interval) and its rule
files. Once every target has been scraped, a little traffic goes through the real
services, twice: a tenant's vote batch, a batch the gateway rejects, an unauthenticated
call, a tenant-service call and one the tenant service refuses, and a record that
neither consumer can decode (on votes.raw and on votes.accepted). Then each panel's
expressions, with the dashboard's variables filled in as Grafana would (the tenant one
of those the variable's query offers), must return series through Prometheus's HTTP
API, and a few figures must show that traffic.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from confluent_kafka import Producer

from devstack import workers
from devstack.raw_votes import RawVoteProducer
from sbp.dashboards.files import OUT
from sbp.dashboards.grafana import expand, expressions
from sbp.settings import REPO_ROOT, Settings
from streams.topics import VOTES_ACCEPTED
from tests.debian_prometheus import binary
from tests.integration.admin_calls import ADMIN, Caller, fresh_tenant
from tests.integration.conftest import Tenant
from tests.integration.observe import wait_for
from tests.integration.votes import vote

PROMETHEUS_DIR = REPO_ROOT / "ops" / "prometheus"
# Grafana's $__rate_interval over a range of a few minutes: a window that holds the
# whole test, so a rate shows the test's traffic until the end.
RATE_INTERVAL = "1m"
QUERY_DEADLINE_S = 30
# `or vector(0)` shows 0 rather than no data while a series is still unborn; so that the
# fallback cannot hide a wrong name or label, what it guards must return series too,
# except in these panels, whose events the test cannot make on a healthy stack.
FALLBACK = re.compile(r" or (?:on \(\) )?vector\(0\)")
UNBORN = {
    ("sbp-gateway", "5xx ratio"),
    ("sbp-admin", "5xx ratio"),
    ("sbp-tenant-health", "5xx ratio"),
    ("sbp-tenant-health", "Error ratios"),
    ("sbp-worker", "Timer errors (5 min)"),
}


@dataclass(frozen=True)
class Prometheus:
    url: str

    def api(self, path: str, **params: Any) -> Any:
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=10)
        body = answer.raise_for_status().json()
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        data = self.api("query", query=expr)
        assert data["resultType"] == "vector", (expr, data["resultType"])
        result: list[dict[str, Any]] = data["result"]
        return result


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def scrape_config(settings: Settings) -> dict[str, Any]:
    """ops/prometheus/prometheus.yml with the stack's ports, one-second scrapes and
    evaluations, and the rule files by absolute path."""
    config: dict[str, Any] = yaml.safe_load((PROMETHEUS_DIR / "prometheus.yml").read_text())
    targets = {
        "sbp-gateway": [settings.gateway_metrics_port],
        "sbp-worker": [settings.worker_port(i) for i in workers.running(settings)],
        "sbp-pg-sink": [settings.sink_web_port],
        "sbp-admin": [settings.admin_metrics_port],
    }
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    # The dashboards and alerts select these jobs by name: the project's file must have them.
    assert set(jobs) == set(targets)
    for name, ports in targets.items():
        jobs[name]["static_configs"] = [{"targets": [f"{settings.host}:{port}" for port in ports]}]
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(PROMETHEUS_DIR / rule) for rule in config["rule_files"]]
    return config


@pytest.fixture
def prometheus(stack: Settings, tmp_path: Path) -> Iterator[Prometheus]:
    server = binary("prometheus")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump(scrape_config(stack)))
    port = free_port()
    log = (tmp_path / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            server,
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--log.level=warn",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (tmp_path / "prometheus.log").read_text()
        try:
            return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_for(ready, 30, "Prometheus ready")
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def dashboards() -> dict[str, dict[str, Any]]:
    return {path.stem: json.loads(path.read_text()) for path in sorted(OUT.glob("*.json"))}


def every_target_scraped(prometheus: Prometheus, expected: int) -> bool:
    targets = prometheus.api("targets", state="active")["activeTargets"]
    return len(targets) == expected and all(t["health"] == "up" for t in targets)


def drive_traffic(tenant: Tenant, tenant_admin: Caller) -> None:
    batch = f"{tenant.gateway}/api/v1/votes/batch"
    accepted = httpx.post(
        batch, json={"items": [vote(z, 1) for z in tenant.zones]}, headers=tenant.headers()
    )
    assert accepted.status_code == 200, accepted.text
    # Rejected after the token was verified: a 4xx under the tenant's label.
    rejected = httpx.post(batch, json={"items": []}, headers=tenant.headers())
    assert rejected.status_code == 422, rejected.text
    assert httpx.post(batch, json={}).status_code == 401
    # The tenant service: a call it serves and one it refuses (an occupant is no admin).
    assert tenant_admin("GET", f"{ADMIN}/buildings").status_code == 200
    refused = httpx.get(f"{tenant.gateway}{ADMIN}/buildings", headers=tenant.headers())
    assert refused.status_code == 403, refused.text
    # A record each consumer cannot decode: a dead letter by reason from each group.
    key = f"{tenant.tenant_id}|b1|z1".encode()
    with RawVoteProducer(tenant.settings) as producer:
        producer.produce_bytes(key, b"not avro")
    # As the vote stage's principal, the only one that may write votes.accepted.
    as_worker = Producer(tenant.settings.kafka_config("worker"))
    as_worker.produce(VOTES_ACCEPTED.name, key=key, value=b"not avro either")
    assert as_worker.flush(30) == 0


def gateway_label(tenant: Tenant) -> str:
    """The label the gateway gave the test's tenant: its id among the first 50 tenants the
    process has seen, `other` after them (read from the gateway's own page)."""
    settings = tenant.settings
    page = httpx.get(f"http://{settings.host}:{settings.gateway_metrics_port}/metrics")
    return tenant.tenant_id if f'tenant="{tenant.tenant_id}"' in page.text else "other"


def offered(prometheus: Prometheus, definition: str) -> list[str]:
    """What a query variable offers: the values of its label_values(selector, label)."""
    selector, label = definition.removeprefix("label_values(").removesuffix(")").split(", ")
    values: list[str] = prometheus.api(f"label/{label}/values", **{"match[]": selector})
    return values


def panel_query(model: dict[str, Any], title: str, values: dict[str, str]) -> str:
    """The first query of the panel so titled, its variables filled in."""
    return expand(next(e for t, e in expressions(model) if t == title), values)


def some_series(prometheus: Prometheus, query: str) -> Callable[[], list[dict[str, Any]]]:
    return lambda: prometheus.query(query)


def above_zero(
    prometheus: Prometheus, query: str, **labels: str
) -> Callable[[], list[dict[str, Any]]]:
    """The series with those labels whose current value is above 0."""
    return lambda: [
        r
        for r in prometheus.query(query)
        if labels.items() <= r["metric"].items() and float(r["value"][1]) > 0
    ]


def test_every_panel_of_every_dashboard_returns_series(
    tenant: Tenant, prometheus: Prometheus
) -> None:
    started = time.monotonic()
    settings = tenant.settings
    expected = sum(
        len(static["targets"])
        for job in scrape_config(settings)["scrape_configs"]
        for static in job["static_configs"]
    )
    wait_for(lambda: every_target_scraped(prometheus, expected), 30, "every target scraped")
    _, tenant_admin = fresh_tenant(settings)
    drive_traffic(tenant, tenant_admin)

    models = dashboards()
    tenants = models["sbp-tenant-health"]
    variables = {v["name"]: v for v in tenants["templating"]["list"]}
    label = gateway_label(tenant)
    # The tenant variable offers the label under which the gateway counted the tenant.
    wait_for(
        lambda: label in offered(prometheus, variables["tenant"]["definition"]),
        QUERY_DEADLINE_S,
        f"{label} among the tenant variable's values",
    )
    values = {"__rate_interval": RATE_INTERVAL, "tenant": label}
    # A counter's series is born with its first event, and rate() counts only what comes
    # after a scrape of it: once the first round's series are scraped, the same traffic
    # again, so that the rates show it.
    for born in (
        f'sbp_http_requests_total{{job="sbp-gateway",tenant="{label}",status="422"}}',
        f'sbp_http_requests_total{{job="sbp-admin",route="{ADMIN}/buildings",status="403"}}',
        'sbp_dlq_records_total{group="sbp-worker",reason="not_avro_framed"}',
        'sbp_dlq_records_total{group="sbp-pg-sink",reason="not_avro_framed"}',
    ):
        wait_for(some_series(prometheus, born), QUERY_DEADLINE_S, f"{born} scraped")
    drive_traffic(tenant, tenant_admin)

    # Series appear as the rules evaluate and the pipeline catches up: one deadline for
    # all, then every expression still without a series is reported together.
    empty: list[str] = []
    deadline = time.monotonic() + QUERY_DEADLINE_S
    for uid, model in models.items():
        for title, expr in expressions(model):
            query = expand(expr, values)
            guarded = FALLBACK.sub("", query)
            queries = [query] if guarded == query or (uid, title) in UNBORN else [guarded]
            for q in queries:
                try:
                    wait_for(
                        some_series(prometheus, q),
                        max(1.0, deadline - time.monotonic()),
                        f"{uid}: {title}",
                    )
                except AssertionError:
                    empty.append(f"{uid} / {title}: {q}")
    assert not empty, "panels without a series:\n" + "\n".join(empty)

    # And the figures show the traffic: the tenant's requests, and its rejected ones ...
    wait_for(
        above_zero(prometheus, panel_query(tenants, "Requests/s", values)),
        QUERY_DEADLINE_S,
        "the tenant's requests/s",
    )
    four_xx = wait_for(
        above_zero(prometheus, panel_query(tenants, "4xx ratio", values)),
        QUERY_DEADLINE_S,
        "the tenant's 4xx ratio",
    )
    assert float(four_xx[0]["value"][1]) < 1
    five_xx = prometheus.query(panel_query(tenants, "5xx ratio", values))
    assert [float(r["value"][1]) for r in five_xx] == [0]
    # ... the vote batches on the gateway, the refused admin calls on the tenant service ...
    wait_for(
        above_zero(
            prometheus,
            panel_query(models["sbp-gateway"], "Traffic by route", values),
            route="/api/v1/votes/batch",
        ),
        QUERY_DEADLINE_S,
        "the vote batches in the gateway's traffic",
    )
    wait_for(
        above_zero(
            prometheus,
            panel_query(models["sbp-admin"], "Errors by route", values),
            route=f"{ADMIN}/buildings",
            status="403",
        ),
        QUERY_DEADLINE_S,
        "the refused admin calls among the tenant service's errors",
    )
    # ... and the undecodable records among each group's new dead letters by reason (the
    # figure SbpDeadLettersArriving reads), and the worker's count since its start.
    for uid in ("sbp-worker", "sbp-pg-sink"):
        wait_for(
            above_zero(
                prometheus,
                panel_query(models[uid], "New dead letters by reason (15 min)", values),
                reason="not_avro_framed",
            ),
            QUERY_DEADLINE_S,
            f"{uid}: new dead letters",
        )
    wait_for(
        above_zero(
            prometheus,
            panel_query(models["sbp-worker"], "Dead letters by reason, since start", values),
            reason="not_avro_framed",
        ),
        QUERY_DEADLINE_S,
        "the worker's dead letters by reason",
    )
    print(f"dashboards proved in {time.monotonic() - started:.1f}s")
